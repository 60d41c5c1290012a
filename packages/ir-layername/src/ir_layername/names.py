"""Choosing between ``LayerName`` and ``str`` for layer names, and turning either back into text.

Ops declare their layer-name parameter as ``LayerNameType``; model code builds the argument with
``encode_layer_name`` and kernels read it with ``resolve_layer_name``. Where the feature is off,
all three agree on plain ``str``, so the same code runs on every supported torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TypeAlias

from ir_layername.layer_name import HAS_OPAQUE_TYPE, LayerName

ENV_VAR = "IR_USE_LAYERNAME"
"""``"0"`` (or ``false``/``no``/``off``) turns ``LayerName`` off; unset, empty or ``"1"`` (or
``true``/``yes``/``on``) leaves it on where torch supports it. Read once, at import."""

_OFF = ("0", "false", "no", "off")
_ON = ("", "1", "true", "yes", "on")


def _env_allows_layername() -> bool:
    raw = os.environ.get(ENV_VAR, "")
    text = raw.strip().lower()
    if text in _OFF:
        return False
    if text in _ON:
        return True
    raise ValueError(
        f"{ENV_VAR}={raw!r} is not understood; use one of "
        f"{', '.join(repr(v) for v in _OFF + _ON if v)} (or leave it unset)"
    )


_env_allows = _env_allows_layername()  # validated on every torch, used where it matters
USE_LAYERNAME: bool = HAS_OPAQUE_TYPE and _env_allows
"""Whether ops take ``LayerName`` (True) or ``str`` (False) in this process."""

if TYPE_CHECKING:
    LayerNameType: TypeAlias = LayerName | str
else:
    LayerNameType = LayerName if USE_LAYERNAME else str
"""The annotation for an op's layer-name parameter.

At run time it is the one class ops take here (``LayerName`` or ``str``), so
``torch.library.custom_op`` infers the schema from it; type checkers see the union.
"""


def encode_layer_name(name: str) -> LayerNameType:
    """The argument to pass for layer ``name``: a ``LayerName`` if ``USE_LAYERNAME``, else ``name``.

    Raises ``TypeError`` for a non-``str`` and ``ValueError`` for an empty name.
    """
    if not isinstance(name, str):
        raise TypeError(f"layer name must be a str, got {type(name).__name__}: {name!r}")
    if not name:
        raise ValueError("layer name must be a non-empty str, got ''")
    return LayerName(name) if USE_LAYERNAME else name


def resolve_layer_name(name: str | LayerName) -> str:
    """The text of a layer name given as ``str``, ``LayerName``, or the fake object of one.

    While torch.compile traces, an op sees a hoisted ``LayerName`` wrapped in a fake script
    object; it is unwrapped to the name of the layer it was traced with. A fake kernel must not
    let that name change its output's metadata: the compiled graph is shared by every layer.
    Raises ``TypeError`` for anything else.
    """
    if isinstance(name, str):
        return name
    real = _unwrap_fake(name)
    if isinstance(real, LayerName):
        return real.value
    raise TypeError(f"layer name must be a str or a LayerName, got {type(name).__name__}: {name!r}")


def _unwrap_fake(value: object) -> object:
    """The real object behind a fake script object; anything else unchanged."""
    from torch._library.fake_class_registry import FakeScriptObject

    if type(value) is FakeScriptObject:
        return object.__getattribute__(value, "real_obj")
    return value
