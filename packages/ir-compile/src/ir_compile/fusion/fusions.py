"""The fusions ir-compile applies, by name, and the pass that applies them.

=============================  ===================================================================
name                           rewrite
=============================  ===================================================================
``add_rms_norm``               ``s = x + r; rms_norm(s, w, eps[, v])`` -> ``fused_add_rms_norm``
                               (its ``residual_out`` replaces ``s``)
``fused_add_rms_norm_quant``   ``fused_add_rms_norm`` then ``static_scaled_fp8_quant`` of its
                               output -> ``fused_add_rms_norm_static_fp8_quant``
``rms_norm_quant``             ``rms_norm`` then ``static_scaled_fp8_quant`` ->
                               ``rms_norm_static_fp8_quant``
``silu_and_mul_quant``         ``silu_and_mul`` then ``static_scaled_fp8_quant`` ->
                               ``silu_and_mul_static_fp8_quant``
=============================  ===================================================================

They run in that order, so a residual add, a norm and a quantization become one
``fused_add_rms_norm_static_fp8_quant``. None fires where the activation and the weight have
different dtypes (fused kernels take the weight in the activation's dtype). ``add_rms_norm``
needs the two summands to be tensors of one shape and dtype, added without ``alpha``; it changes
the rounding slightly (the fused op normalizes the float32 sum, the pair the rounded one), within
the op's tolerances.

The composite fusions' patterns come from the composite ops' compositions, so they follow any
change to those. A fused node is lowered like any other: to the composite op's fused provider
where a kernel set has one, else (``unfused``) back to its components.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import torch
from torch.fx import Graph, Node

from ir_compile.fusion.pattern import (
    Call,
    Param,
    Pattern,
    Result,
    composition_pattern,
    ir_binder,
    try_rewrite,
    x_and_weight_dtypes_agree,
)
from ir_compile.fx_utils import position_of
from ir_op import ops

logger = logging.getLogger(__name__)

FUSION_NAMES: tuple[str, ...] = (
    "add_rms_norm",
    "fused_add_rms_norm_quant",
    "rms_norm_quant",
    "silu_and_mul_quant",
)
"""Every fusion, in the order the pass applies them."""


def _bind_plain_add(node: Node) -> Sequence[Any] | None:
    """``aten.add.Tensor(a, b)`` without ``alpha`` (or with ``alpha=1``): ``(a, b)``."""
    if len(node.args) != 2 or set(node.kwargs) - {"alpha"}:
        return None
    if node.kwargs.get("alpha", 1) != 1:
        return None
    return node.args


def _summands_fit(bindings: Mapping[str, Any]) -> bool:
    x, residual = bindings.get("x"), bindings.get("x_residual")
    return (
        isinstance(x, torch.Tensor)
        and isinstance(residual, torch.Tensor)
        and x.dtype == residual.dtype
        and x.shape == residual.shape
        and x_and_weight_dtypes_agree(bindings)
    )


def _add_rms_norm() -> Pattern:
    add = Call(torch.ops.aten.add.Tensor, (Param("x"), Param("x_residual")), _bind_plain_add)
    norm = Call(
        ops.rms_norm.torch_op,
        (Result(0, None), Param("weight"), Param("epsilon"), Param("variance_size")),
        ir_binder(ops.rms_norm),
    )
    return Pattern(
        calls=(add, norm),
        results=(Result(1, None), Result(0, None)),
        replacement=ops.fused_add_rms_norm,
        constraint=_summands_fit,
    )


_BUILDERS: dict[str, Callable[[], Pattern]] = {
    "add_rms_norm": _add_rms_norm,
    "fused_add_rms_norm_quant": lambda: composition_pattern(
        ops.fused_add_rms_norm_static_fp8_quant, x_and_weight_dtypes_agree
    ),
    "rms_norm_quant": lambda: composition_pattern(
        ops.rms_norm_static_fp8_quant, x_and_weight_dtypes_agree
    ),
    "silu_and_mul_quant": lambda: composition_pattern(
        ops.silu_and_mul_static_fp8_quant, x_and_weight_dtypes_agree
    ),
}


@functools.cache
def fusion_pattern(name: str) -> Pattern:
    """The pattern of fusion ``name`` (built once)."""
    return _BUILDERS[name]()


def check_fusion_names(fusions: Collection[str] | None) -> tuple[str, ...]:
    """Normalize ``fusions`` (``None``: all) to known names in application order."""
    if fusions is None:
        return FUSION_NAMES
    if isinstance(fusions, str) or not isinstance(fusions, Collection):
        raise TypeError(
            f"fusions must be a collection of fusion names (or None for all), got {fusions!r}; "
            f"fusions: {', '.join(FUSION_NAMES)}"
        )
    unknown = [f for f in fusions if f not in FUSION_NAMES]
    if unknown:
        raise ValueError(f"unknown fusion {unknown[0]!r}; fusions: {', '.join(FUSION_NAMES)}")
    return tuple(name for name in FUSION_NAMES if name in fusions)


class FusionPass:
    """Applies the enabled fusions (``None``: all) to a graph, in :data:`FUSION_NAMES` order.

    After a run, :attr:`counts` maps each enabled fusion to the times it was applied.
    """

    def __init__(self, fusions: Collection[str] | None = None) -> None:
        self.fusions = check_fusion_names(fusions)
        self.counts: dict[str, int] = {}

    def __call__(self, graph: Graph) -> None:
        from torch._inductor.pattern_matcher import stable_topological_sort

        self.counts = dict.fromkeys(self.fusions, 0)
        for name in self.fusions:
            pattern = fusion_pattern(name)
            anchor_target = pattern.calls[-1].target
            position: dict[Node, float] = dict(position_of(graph))
            for anchor in list(graph.find_nodes(op="call_function", target=anchor_target)):
                if anchor._erased:
                    continue
                outputs = try_rewrite(graph, pattern, anchor, position)
                if outputs is None:
                    continue
                self.counts[name] += 1
                if any(position[u] < position[out] for out in outputs for u in out.users):
                    stable_topological_sort(graph)
                    position = dict(position_of(graph))
        applied = {k: v for k, v in self.counts.items() if v}
        if applied:
            logger.info("FusionPass: %s", ", ".join(f"{k} x{v}" for k, v in applied.items()))
