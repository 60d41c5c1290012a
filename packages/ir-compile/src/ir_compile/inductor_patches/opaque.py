"""Inductor fixes for hoisted opaque arguments (a ``LayerName``), each applied only where needed.

A hoisted opaque value reaches Inductor as a graph input whose fake value is a
``FakeScriptObject`` (lowered to an ``ir.TorchBindObject``). Two places in stock Inductor
mishandle it; whether the installed torch does is found by running the code in question on a
fake ``LayerName``, never by reading the version:

- **consistent subgraph args** (stock 2.13 and 2.15): the post-grad fake-tensor updater compares
  the arguments of every call of a nested compile region with the first call's, and compares
  fake opaque objects by identity. Layers that pass different ``LayerName`` s then fail with
  "subgraph args must have consistent values!" (``torch/_inductor/fx_utils.py``), even with no
  ir op in the graph. The fix counts two fake opaque objects as consistent when their real
  objects are of the same registered opaque type: the subgraph takes the value as an input, so
  its compiled code cannot depend on which one it is.
- **constrain_to_fx_strides** (stock 2.11): the layout constraint of ops tagged
  ``needs_fixed_stride_order`` asks every IR argument's fake value for its strides, and a fake
  opaque object has none (``AttributeError`` on ``stride``). The fix hands the constraint only
  the tensor arguments and passes non-tensor IR arguments through unchanged, as later torch does.

``install()`` applies what this torch needs and is idempotent; ``uninstall()`` restores stock
behaviour. Where torch cannot hoist opaque values (``ir_layername.HAS_OPAQUE_TYPE`` False, e.g.
2.10), neither failure can happen and both are no-ops.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch

logger = logging.getLogger(__name__)

_PATCHED_MARK = "__ir_compile_opaque_patch__"


@dataclass(frozen=True)
class OpaquePatchStatus:
    """Which fixes this torch needs and which are installed now."""

    consistent_subgraph_args_needed: bool
    consistent_subgraph_args_installed: bool
    fx_strides_needed: bool
    fx_strides_installed: bool


# ---------------------------------------------------------------------------------------------
# Fake opaque objects


def _is_registered_opaque_type(cls: type) -> bool:
    from torch._library import opaque_object

    # The newer name first: the older one logs a deprecation warning where both exist.
    check = getattr(opaque_object, "is_custom_class", None) or opaque_object.is_opaque_type
    return bool(check(cls))


def _real_object(value: object) -> tuple[bool, object]:
    """``(True, real object)`` for a fake script object, ``(False, None)`` otherwise."""
    from torch._library.fake_class_registry import FakeScriptObject

    if type(value) is FakeScriptObject:
        return True, object.__getattribute__(value, "real_obj")
    return False, None


def fake_opaque_objects_consistent(new: object, old: object) -> bool:
    """True when ``new`` and ``old`` are fake objects of the same registered opaque type."""
    new_is_fake, new_real = _real_object(new)
    old_is_fake, old_real = _real_object(old)
    return (
        new_is_fake
        and old_is_fake
        and type(new_real) is type(old_real)
        and _is_registered_opaque_type(type(new_real))
    )


def _fake_layer_names() -> tuple[object, object] | None:
    """Fake objects of two different ``LayerName`` s, or None where torch cannot hoist them."""
    import ir_layername

    if not ir_layername.HAS_OPAQUE_TYPE:
        return None
    from torch._library.fake_class_registry import maybe_to_fake_obj
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode()
    first = maybe_to_fake_obj(mode, ir_layername.LayerName("probe.layers.0"))
    second = maybe_to_fake_obj(mode, ir_layername.LayerName("probe.layers.1"))
    return first, second


# ---------------------------------------------------------------------------------------------
# Consistent subgraph args (torch._inductor.fx_utils._is_fake_tensor_same)


def _stock_is_fake_tensor_same() -> Callable[..., bool] | None:
    from torch._inductor import fx_utils

    current = getattr(fx_utils, "_is_fake_tensor_same", None)
    if current is None:
        return None
    original: Callable[..., bool] = getattr(current, _PATCHED_MARK, current)
    return original


@functools.cache
def consistent_subgraph_args_needed() -> bool:
    """Whether stock Inductor calls fake objects of two ``LayerName`` s inconsistent.

    False where Inductor has no module-level ``_is_fake_tensor_same`` (it does not check
    subgraph arguments) or where torch cannot hoist ``LayerName``.
    """
    stock = _stock_is_fake_tensor_same()
    fakes = _fake_layer_names()
    if stock is None or fakes is None:
        return False
    return not stock(fakes[0], fakes[1], {}, check_storage=False)


def _consistent_args_wrapper(stock: Callable[..., bool]) -> Callable[..., bool]:
    @functools.wraps(stock)
    def is_fake_tensor_same(new: Any, old: Any, *args: Any, **kwargs: Any) -> bool:
        if fake_opaque_objects_consistent(new, old):
            return True
        return stock(new, old, *args, **kwargs)

    setattr(is_fake_tensor_same, _PATCHED_MARK, stock)
    return is_fake_tensor_same


# ---------------------------------------------------------------------------------------------
# constrain_to_fx_strides (torch._inductor.lowering)


def _stock_constrain_to_fx_strides() -> Callable[..., Any]:
    from torch._inductor import lowering

    current = lowering.constrain_to_fx_strides
    original: Callable[..., Any] = getattr(current, _PATCHED_MARK, current)
    return original


@functools.cache
def fx_strides_needed() -> bool:
    """Whether stock ``constrain_to_fx_strides`` fails on a hoisted ``LayerName`` argument."""
    fakes = _fake_layer_names()
    if fakes is None:
        return False
    from torch._inductor import ir

    graph = torch.fx.Graph()
    placeholder = graph.placeholder("layer_name")
    placeholder.meta["val"] = fakes[0]
    call = graph.call_function(torch.ops.aten.alias.default, (placeholder,))
    stock = _stock_constrain_to_fx_strides()
    try:
        stock(call, ir.TorchBindObject(name="layer_name", value=cast(Any, fakes[0])))
    except AttributeError:
        return True
    return False


def _fake_value(fx_arg: object) -> object:
    if isinstance(fx_arg, torch.fx.Node):
        return fx_arg.meta.get("val")
    return fx_arg


class _Hidden:
    """Stands in for a non-tensor IR argument while the stock constraint runs."""


def _fx_strides_wrapper(stock: Callable[..., Any]) -> Callable[..., Any]:
    from torch._inductor import ir

    def hides(arg: object, fx_arg: object) -> bool:
        return isinstance(arg, ir.IRNode) and not isinstance(_fake_value(fx_arg), torch.Tensor)

    @functools.wraps(stock)
    def constrain_to_fx_strides(fx_node: torch.fx.Node, *args: Any, **kwargs: Any) -> Any:
        hidden: dict[int | str, object] = {}
        shown_args = list(args)
        for i, (arg, fx_arg) in enumerate(zip(args, fx_node.args, strict=False)):
            if hides(arg, fx_arg):
                hidden[i], shown_args[i] = arg, _Hidden()
        shown_kwargs = dict(kwargs)
        for key, arg in kwargs.items():
            if hides(arg, fx_node.kwargs.get(key)):
                hidden[key], shown_kwargs[key] = arg, _Hidden()
        new_args, new_kwargs = stock(fx_node, *shown_args, **shown_kwargs)
        if not hidden:
            return new_args, new_kwargs
        new_args = list(new_args)
        for where, arg in hidden.items():
            if isinstance(where, int):
                new_args[where] = arg
            else:
                new_kwargs[where] = arg
        return tuple(new_args), new_kwargs

    setattr(constrain_to_fx_strides, _PATCHED_MARK, stock)
    return constrain_to_fx_strides


def _rebind(old: object, new: object) -> None:
    """Point every place Inductor holds ``old`` (module names, per-op constraints) at ``new``."""
    from torch._inductor import graph, lowering

    for module in (lowering, graph):
        if getattr(module, "constrain_to_fx_strides", None) is old:
            module.constrain_to_fx_strides = new  # type: ignore[attr-defined]
    constraints: dict[Any, Any] = lowering._maybe_layout_constraints
    for op, constraint in list(constraints.items()):
        if constraint is old:
            constraints[op] = new


# ---------------------------------------------------------------------------------------------
# Public


def status() -> OpaquePatchStatus:
    """What this torch needs (probed once per process) and what is installed now."""
    from torch._inductor import fx_utils, lowering

    return OpaquePatchStatus(
        consistent_subgraph_args_needed=consistent_subgraph_args_needed(),
        consistent_subgraph_args_installed=hasattr(
            getattr(fx_utils, "_is_fake_tensor_same", None), _PATCHED_MARK
        ),
        fx_strides_needed=fx_strides_needed(),
        fx_strides_installed=hasattr(lowering.constrain_to_fx_strides, _PATCHED_MARK),
    )


def install() -> OpaquePatchStatus:
    """Apply each fix this torch needs (idempotent); returns the resulting status."""
    from torch._inductor import fx_utils, lowering

    current = getattr(fx_utils, "_is_fake_tensor_same", None)
    if (
        current is not None
        and not hasattr(current, _PATCHED_MARK)
        and consistent_subgraph_args_needed()
    ):
        setattr(fx_utils, "_is_fake_tensor_same", _consistent_args_wrapper(current))  # noqa: B010
        logger.debug("installed the consistent-subgraph-args fix for fake opaque objects")

    current_constrain = lowering.constrain_to_fx_strides
    if not hasattr(current_constrain, _PATCHED_MARK) and fx_strides_needed():
        _rebind(current_constrain, _fx_strides_wrapper(current_constrain))
        logger.debug("installed the constrain_to_fx_strides fix for opaque arguments")
    return status()


def uninstall() -> None:
    """Restore stock Inductor where ``install()`` changed it (idempotent)."""
    from torch._inductor import fx_utils, lowering

    current = getattr(fx_utils, "_is_fake_tensor_same", None)
    if hasattr(current, _PATCHED_MARK):
        setattr(fx_utils, "_is_fake_tensor_same", getattr(current, _PATCHED_MARK))  # noqa: B010
    current_constrain = lowering.constrain_to_fx_strides
    if hasattr(current_constrain, _PATCHED_MARK):
        _rebind(current_constrain, getattr(current_constrain, _PATCHED_MARK))
