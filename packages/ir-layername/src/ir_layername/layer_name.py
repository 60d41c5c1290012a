"""``LayerName``: a layer's name as an immutable value that torch.compile hoists to a graph input.

A custom op that takes its layer's name as ``str`` bakes the string into the graph, so the
subgraphs of otherwise identical layers differ and each compiles on its own. Registered as a
hoisted opaque value type, a ``LayerName`` becomes a graph input instead and identical layers
share one compiled subgraph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from ir_layername.support import OpaqueSupport, detect_opaque_support, register_hoisted

OPAQUE_SUPPORT: OpaqueSupport = detect_opaque_support()
"""How the installed torch registers hoisted value types (``route`` ``"none"``: it cannot)."""

if TYPE_CHECKING:
    _OpaqueBase = object
else:
    _OpaqueBase = OPAQUE_SUPPORT.base


class LayerName(_OpaqueBase):
    """The name of one layer (e.g. ``"model.layers.7.self_attn"``), passed to custom ops.

    Immutable and hashable; equal to another ``LayerName`` of the same value and to nothing else
    (not to the plain ``str``). Weak-referenceable, as ``torch.library.opcheck`` needs.
    ``__fx_repr__`` lets FX code generation rebuild it. Where torch supports it, the class is
    registered as a hoisted opaque value type (``HAS_OPAQUE_TYPE``); elsewhere it still works as
    a value, but ops should take ``str`` there (see ``LayerNameType``).
    """

    # No __slots__: torch's opaque base classes carry __dict__ and __weakref__ already, and the
    # class must stay weak-referenceable where it has no base.

    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"LayerName value must be a str, got {type(value).__name__}: {value!r}")
        if not value:
            raise ValueError("LayerName value must be a non-empty str, got ''")
        object.__setattr__(self, "_value", value)

    @property
    def value(self) -> str:
        """The layer's name."""
        return self._value

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"LayerName is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"LayerName is immutable; cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, LayerName):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash((LayerName.__qualname__, self._value))

    def __repr__(self) -> str:
        return f"LayerName({self._value!r})"

    def __fx_repr__(self) -> tuple[str, dict[str, type[Any]]]:
        """An expression that rebuilds this value, and the names it uses (for FX codegen)."""
        return repr(self), {"LayerName": LayerName}

    def __reduce__(self) -> tuple[type[LayerName], tuple[str]]:
        return LayerName, (self._value,)


_refused_because: str | None = register_hoisted(LayerName, OPAQUE_SUPPORT)

HAS_OPAQUE_TYPE: bool = _refused_because is None
"""True where torch hoists ``LayerName`` into graph inputs (torch >= 2.11 with the feature)."""

UNSUPPORTED_REASON: str | None = _refused_because
"""Why ``HAS_OPAQUE_TYPE`` is False (None when it is True)."""
