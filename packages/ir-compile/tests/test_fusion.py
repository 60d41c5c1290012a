"""Fusion passes on graphs of IR op nodes: what fires, what must not, and the numbers after."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from ir_compile.fusion import (
    FUSION_NAMES,
    FusionPass,
    PatternError,
    check_fusion_names,
    composition_pattern,
    fusion_pattern,
)
from ir_compile.fusion.pattern import Param, Result, x_and_weight_dtypes_agree
from ir_compile.fx_utils import ir_calls
from ir_compile.passes.cleanup import CleanupPass
from ir_compile.passes.lowering import IrLoweringPass
from ir_compile.testing import ir_graph, run_graph
from ir_op import IrOp, ops, register_op
from ir_op.composite import Components
from ir_op.testing import assert_outputs_close

FP8 = torch.float8_e4m3fn


def data(dtype: torch.dtype = torch.float32, weight_dtype: torch.dtype | None = None) -> Any:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 40, generator=g).to(dtype)
    r = torch.randn(6, 40, generator=g).to(dtype)
    w = (torch.rand(40, generator=g) + 0.5).to(weight_dtype or dtype)
    scale = torch.tensor([0.02])
    return x, r, w, scale


def fuse(
    fn: Callable[..., Any], *args: Any, fusions: tuple[str, ...] | None = None
) -> tuple[torch.fx.GraphModule, dict[str, int]]:
    gm = ir_graph(fn, *args)
    fusion = FusionPass(fusions)
    fusion(gm.graph)
    CleanupPass()(gm.graph)
    return gm, fusion.counts


def ir_op_names(gm: torch.fx.GraphModule) -> list[str]:
    return [call.op.name for call in ir_calls(gm.graph)]


def lowered_run(gm: torch.fx.GraphModule, *args: Any) -> Any:
    IrLoweringPass()(gm.graph)
    assert ir_calls(gm.graph) == []
    return run_graph(gm, *args)


# ---------------------------------------------------------------------------------------------
# Each fusion


def add_norm(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    h = x + r
    return ops.rms_norm(h, w, 1e-6), h


def test_add_rms_norm() -> None:
    args = data()
    gm, counts = fuse(add_norm, *args, fusions=("add_rms_norm",))
    assert counts == {"add_rms_norm": 1}
    assert ir_op_names(gm) == ["fused_add_rms_norm"]
    assert not gm.graph.find_nodes(op="call_function", target=torch.ops.aten.add.Tensor)
    torch.testing.assert_close(lowered_run(gm, *args), add_norm(*args))


def test_add_rms_norm_keeps_variance_size_and_rounds_within_tolerance() -> None:
    args = data(torch.bfloat16)

    def model(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        h = r + x
        return ops.rms_norm(h, w, 1e-5, 16), h

    gm, counts = fuse(model, *args)
    assert counts["add_rms_norm"] == 1
    (call,) = ir_calls(gm.graph)
    assert call.bound_args()[3:] == (1e-5, 16)
    assert_outputs_close(ops.fused_add_rms_norm, lowered_run(gm, *args), model(*args))


def norm_quant(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> Tensor:
    return ops.static_scaled_fp8_quant(ops.rms_norm(x, w, 1e-6), scale)


def fused_add_norm_quant(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    out, residual = ops.fused_add_rms_norm(x, r, w, 1e-6)
    return ops.static_scaled_fp8_quant(out, scale), residual * 2


def silu_quant(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> Tensor:
    return ops.static_scaled_fp8_quant(ops.silu_and_mul(x), scale, FP8)


@pytest.mark.parametrize(
    ("name", "fn", "fused"),
    [
        ("rms_norm_quant", norm_quant, "rms_norm_static_fp8_quant"),
        ("fused_add_rms_norm_quant", fused_add_norm_quant, "fused_add_rms_norm_static_fp8_quant"),
        ("silu_and_mul_quant", silu_quant, "silu_and_mul_static_fp8_quant"),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_composite_fusions(
    name: str, fn: Callable[..., Any], fused: str, dtype: torch.dtype
) -> None:
    args = data(dtype)
    gm, counts = fuse(fn, *args)
    assert counts == {n: int(n == name) for n in FUSION_NAMES}
    assert ir_op_names(gm) == [fused]
    expected = fn(*args)
    assert_outputs_close(getattr(ops, fused), lowered_run(gm, *args), expected)


def test_add_norm_quant_becomes_one_node() -> None:
    args = data(torch.bfloat16)

    def model(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        h = x + r
        return ops.static_scaled_fp8_quant(ops.rms_norm(h, w, 1e-6), scale), h

    gm, counts = fuse(model, *args)
    assert counts["add_rms_norm"] == 1 and counts["fused_add_rms_norm_quant"] == 1
    assert ir_op_names(gm) == ["fused_add_rms_norm_static_fp8_quant"]
    assert_outputs_close(
        ops.fused_add_rms_norm_static_fp8_quant, lowered_run(gm, *args), model(*args)
    )

    gm, counts = fuse(model, *args, fusions=("rms_norm_quant",))
    assert counts == {"rms_norm_quant": 1}
    assert ir_op_names(gm) == ["rms_norm_static_fp8_quant"]

    gm, counts = fuse(model, *args, fusions=())
    assert counts == {}
    assert ir_op_names(gm) == ["rms_norm", "static_scaled_fp8_quant"]


def test_many_matches_in_one_graph() -> None:
    args = data()

    def model(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> list[Tensor]:
        outs = []
        for _ in range(5):
            r = x + r
            x = ops.rms_norm(r, w, 1e-6)
            outs.append(ops.static_scaled_fp8_quant(x, scale))
            x = x * 0.5
        return outs

    gm, counts = fuse(model, *args)
    assert counts["add_rms_norm"] == 5
    assert counts["fused_add_rms_norm_quant"] == 0  # the norm's output is read by x * 0.5
    for got, want in zip(lowered_run(gm, *args), model(*args), strict=True):
        assert_outputs_close(ops.static_scaled_fp8_quant, got, want)


# ---------------------------------------------------------------------------------------------
# When fusions must not fire


def test_no_fusion_when_x_and_weight_dtypes_differ() -> None:
    args = data(torch.bfloat16, weight_dtype=torch.float32)
    for fn in (add_norm, norm_quant, fused_add_norm_quant):
        _, counts = fuse(fn, *args)
        assert sum(counts.values()) == 0, fn.__name__
    assert x_and_weight_dtypes_agree({"x": args[0], "weight": args[2]}) is False
    assert x_and_weight_dtypes_agree({"x": args[0], "weight": None}) is True


def test_no_fusion_when_an_intermediate_is_read_elsewhere() -> None:
    args = data()

    def model(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        normed = ops.rms_norm(x, w, 1e-6)
        return ops.static_scaled_fp8_quant(normed, scale), normed

    gm, counts = fuse(model, *args)
    assert counts["rms_norm_quant"] == 0
    assert ir_op_names(gm) == ["rms_norm", "static_scaled_fp8_quant"]


@pytest.mark.parametrize(
    "summands",
    [
        pytest.param(lambda x, r: torch.add(x, r, alpha=2), id="alpha"),
        pytest.param(lambda x, r: x + r[:1], id="broadcast"),
        pytest.param(lambda x, r: x + 1.0, id="scalar"),
        pytest.param(lambda x, r: x + r.double(), id="promotion"),
    ],
)
def test_no_add_rms_norm_for_other_adds(summands: Callable[[Tensor, Tensor], Tensor]) -> None:
    args = data()

    def model(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> Tensor:
        return ops.rms_norm(summands(x, r), w, 1e-6)

    gm, counts = fuse(model, *args)
    assert counts["add_rms_norm"] == 0
    torch.testing.assert_close(lowered_run(gm, *args), model(*args))


def test_no_fusion_for_other_literals() -> None:
    args = data()

    def model(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> Tensor:
        return ops.static_scaled_fp8_quant(ops.rms_norm(x, w, 1e-6, 8), scale)

    _, counts = fuse(model, *args)
    assert counts["rms_norm_quant"] == 0  # the composite has no variance_size


def test_no_fusion_that_would_make_a_cycle() -> None:
    args = data()

    def model(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        out, residual = ops.fused_add_rms_norm(x, r, w, 1e-6)
        computed = (residual.abs().amax() / 448.0).reshape(1)  # the scale reads residual
        return ops.static_scaled_fp8_quant(out, computed), residual

    gm, counts = fuse(model, *args)
    assert counts["fused_add_rms_norm_quant"] == 0
    got = lowered_run(gm, *args)
    for a, b in zip(got, model(*args), strict=True):
        assert_outputs_close(ops.fused_add_rms_norm_static_fp8_quant, a, b)


def test_users_of_the_sum_before_the_norm_are_moved_after_the_fused_node() -> None:
    args = data()

    def model(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        h = x + r
        early = h * 3  # reads the sum before the norm
        return ops.rms_norm(h, w, 1e-6), early

    gm, counts = fuse(model, *args)
    assert counts["add_rms_norm"] == 1
    gm.graph.lint()  # topologically valid again
    torch.testing.assert_close(lowered_run(gm, *args), model(*args))


# ---------------------------------------------------------------------------------------------
# Patterns and configuration


def test_composite_patterns_come_from_compositions() -> None:
    pattern = fusion_pattern("fused_add_rms_norm_quant")
    assert [c.target for c in pattern.calls] == [
        ops.fused_add_rms_norm.torch_op,
        ops.static_scaled_fp8_quant.torch_op,
    ]
    assert pattern.calls[0].args == (
        Param("x"),
        Param("x_residual"),
        Param("weight"),
        Param("epsilon"),
        None,  # variance_size: the composite always normalizes whole rows
    )
    assert pattern.calls[1].args == (Result(0, 0), Param("scale"), Param("fp8_dtype"))
    assert pattern.results == (Result(1, None), Result(0, 1))
    assert pattern.replacement is ops.fused_add_rms_norm_static_fp8_quant


def test_patterns_need_plain_compositions(isolated: dict[str, IrOp]) -> None:
    @register_op
    def inner(x: Tensor) -> Tensor:
        return x + 1

    @register_op(composite_of=[inner])
    def doubled_inner(components: Components, x: Tensor) -> Tensor:
        return components.inner(x) * 2  # not only component calls

    with pytest.raises(PatternError, match="does more than call its components"):
        composition_pattern(doubled_inner, x_and_weight_dtypes_agree)
    with pytest.raises(PatternError, match="is not a composite op"):
        composition_pattern(inner, x_and_weight_dtypes_agree)


def test_fusion_names_are_checked() -> None:
    assert check_fusion_names(None) == FUSION_NAMES
    assert check_fusion_names(["silu_and_mul_quant", "add_rms_norm"]) == (
        "add_rms_norm",
        "silu_and_mul_quant",
    )
    assert check_fusion_names(()) == ()
    with pytest.raises(ValueError, match="unknown fusion 'rms_norm_fp4'"):
        check_fusion_names(["rms_norm_fp4"])
    with pytest.raises(TypeError, match="collection of fusion names"):
        check_fusion_names("add_rms_norm")
