"""Composite ops: ops defined as a composition of other ops, their *components*.

A composite op names what a fused kernel computes, for example an RMS norm followed by fp8
quantization. It is declared with ``register_op(composite_of=[...])`` on a *composition*: a
function whose first parameter receives the components, followed by the op's own parameters::

    @register_op(composite_of=[rms_norm, static_scaled_fp8_quant])
    def rms_norm_static_fp8_quant(
        components: Components, x: Tensor, weight: Tensor | None, epsilon: float, scale: Tensor
    ) -> Tensor:
        normed = components.rms_norm(x, weight, epsilon)
        return components.static_scaled_fp8_quant(normed, scale)

The op's signature and schema are the composition's without that first parameter. One body, run
two ways, gives the op two implementations that cannot drift apart:

- ``native``: each component is its native implementation, so the op's semantics are the
  composition of its components' semantics.
- ``unfused`` (a reserved provider that only composite ops have): each component is the component
  op itself, so every call goes through that component's own dispatch (and, while torch wrap is
  on, through its ``torch.ops`` operator). A kernel set with fast components but no fused kernel
  is thereby still used.

Default priorities: in a default shared by many ops (``IrOpPriorityConfig.with_default``, which
the platforms' defaults use), a composite op gets ``unfused`` right before ``native``, so a GPU
default ``[kernel_set, "native"]`` becomes ``[kernel_set, "unfused", "native"]`` for it: the
fused kernel where the kernel set has one, else the components' kernels. See
:func:`shared_default`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ir_op.impl import IrOpImpl
from ir_op.naming import NATIVE, UNFUSED

if TYPE_CHECKING:
    from ir_op.op import IrOp


class Components:
    """The components of a composite op, by op name, as its composition sees them.

    ``components.rms_norm(...)`` calls the component ``rms_norm`` the way the running
    implementation wants: its native function under ``native``, the op itself (its own dispatch)
    under ``unfused``.
    """

    def __init__(self, op_name: str, fns: Mapping[str, Callable[..., Any]]) -> None:
        # Components are plain instance attributes, so a lookup costs one dict access.
        self.__dict__.update(fns)
        self.__op_name = op_name  # mangled to _Components__op_name: no op name can clash

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Only reached for names that are not components.
        known = [k for k in self.__dict__ if not k.startswith("_Components__")]
        raise AttributeError(
            f"composite op {self.__op_name!r} has no component {name!r}; components: "
            f"{', '.join(known)} (declare it in composite_of)"
        )

    def __repr__(self) -> str:
        names = [k for k in self.__dict__ if not k.startswith("_Components__")]
        return f"Components({self.__op_name!r}: {', '.join(names)})"


def _check_components(op_name: str, components: object) -> tuple[IrOp, ...]:
    from ir_op.op import IrOp  # late: op.py builds on this module

    what = f"op {op_name!r}"
    if isinstance(components, (str, bytes)) or not isinstance(components, Sequence):
        raise TypeError(f"{what}: composite_of must be a list of IR ops, got {components!r}")
    if not components:
        raise ValueError(f"{what}: composite_of is empty; list the ops it is composed of")
    for c in components:
        if not isinstance(c, IrOp):
            raise TypeError(f"{what}: composite_of lists {c!r}, which is not an IR op")
    names = [c.name for c in components]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(
            f"{what}: composite_of lists {duplicated[0]!r} twice; list each component once "
            "(the composition may call it several times)"
        )
    if op_name in names:
        raise ValueError(f"{what}: an op cannot be a component of itself")
    return tuple(components)


def _op_signature(op_name: str, fn: Callable[..., Any]) -> inspect.Signature:
    """The composition's signature, annotations evaluated, without the components parameter."""
    what = f"op {op_name!r}"
    try:
        sig = inspect.signature(fn, eval_str=True)
    except (NameError, SyntaxError, TypeError, ValueError) as e:
        raise ValueError(
            f"{what}: cannot read the composition's signature (annotations must resolve at "
            f"registration): {e}"
        ) from None
    params = list(sig.parameters.values())
    first = params[0] if params else None
    if (
        first is None
        or first.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD
        or first.annotation is not Components
    ):
        raise ValueError(
            f"{what}: a composition's first parameter receives the components; declare it as "
            f"'components: Components' (got {first or 'no parameters'})"
        )
    return sig.replace(parameters=params[1:])


class Composition:
    """A composite op's body with its components: builds its native and unfused functions."""

    def __init__(self, op_name: str, fn: Callable[..., Any], components: Sequence[IrOp]) -> None:
        if not callable(fn):
            raise TypeError(f"op {op_name!r}: the composition must be callable, got {fn!r}")
        self.op_name = op_name
        self.fn = fn
        self.components = _check_components(op_name, components)
        self.signature = _op_signature(op_name, fn)
        self.native: Callable[..., Any] = self._bind({c.name: c.native_fn for c in self.components})
        self.unfused: Callable[..., Any] = self._bind({c.name: c for c in self.components})

    def _bind(self, fns: Mapping[str, Callable[..., Any]]) -> Callable[..., Any]:
        """``fn`` with its components parameter bound, carrying the op's signature and doc."""
        fn = self.fn
        components = Components(self.op_name, fns)

        def run(*args: Any, **kwargs: Any) -> Any:
            return fn(components, *args, **kwargs)

        functools.update_wrapper(run, fn)  # name, doc, module; __wrapped__ for source hashes
        run.__signature__ = self.signature  # type: ignore[attr-defined]
        return run


class CompositeImpl(IrOpImpl):
    """A composite op's ``native`` or ``unfused`` implementation: its composition run over the
    components' native functions, or over the component ops themselves.

    Both take every argument (under ``unfused`` each component's dispatch falls back as that
    component's priority says), so a priority list stops at them.
    """

    def __init__(self, op: IrOp, provider: str, composition: Composition) -> None:
        if provider not in (NATIVE, UNFUSED):
            raise ValueError(f"a composite op's own providers are {NATIVE} and {UNFUSED}")
        fn = composition.native if provider == NATIVE else composition.unfused
        super().__init__(op, provider, fn)
        self.composition = composition

    def uuid(self) -> str:
        """Changes with the composition's source and with the source of every component
        implementation it may run: the native ones for ``native``, any provider's for
        ``unfused``."""
        digest = hashlib.sha256(super().uuid().encode())
        for component in self.composition.components:
            impls = (
                [component.impls[NATIVE]] if self.provider == NATIVE else component.impls.values()
            )
            for impl in impls:
                digest.update(f"{component.name}:{impl.provider}:{impl.uuid()}".encode())
        return digest.hexdigest()


def shared_default(op: IrOp, providers: Sequence[str]) -> tuple[str, ...]:
    """``op``'s share of a priority list given to many ops at once.

    ``unfused`` belongs to composite ops only. A composite op gets it right before ``native`` (or
    last, when the list has no ``native``), unless the list already places it; an empty list stays
    empty. Other ops skip it. So ``["cuda", "native"]`` gives a composite op
    ``["cuda", "unfused", "native"]``: the fused kernel where the kernel set has one, else each
    component through its own priority.
    """
    listed = tuple(providers)
    if not op.components:
        return tuple(p for p in listed if p != UNFUSED)
    if not listed or UNFUSED in listed:
        return listed
    at = listed.index(NATIVE) if NATIVE in listed else len(listed)
    return (*listed[:at], UNFUSED, *listed[at:])
