"""IrLoweringPass on graphs with IR op nodes (``ir_compile.testing.ir_graph``), no Inductor."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from torch import Tensor

from ir_compile.fx_utils import ir_calls
from ir_compile.passes.lowering import IrLoweringPass
from ir_compile.priorities import CompilePriorities, as_priority_config
from ir_compile.testing import ir_graph, run_graph
from ir_op import IrOp, IrOpPriorityConfig, ops, register_op
from ir_op.composite import Components
from ir_op.testing import assert_outputs_close, preserved_priorities

ALL_OPS = [getattr(ops, name) for name in ops.__all__]
CASES = [
    (op, provider) for op in ALL_OPS for provider in ("native", "unfused") if provider in op.impls
]


def lowering(**priorities: list[str]) -> IrLoweringPass:
    return IrLoweringPass(CompilePriorities(as_priority_config(priorities or None)))


def inputs_of(op: IrOp, dtype: torch.dtype = torch.bfloat16) -> tuple[Any, ...]:
    torch.manual_seed(0)
    return op.generate_inputs(num_tokens=5, hidden_size=48, dtype=dtype)


@pytest.mark.parametrize(("op", "provider"), CASES, ids=[f"{o.name}-{p}" for o, p in CASES])
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_each_op_lowers_to_what_eager_computes(op: IrOp, provider: str, dynamic: bool) -> None:
    args = inputs_of(op)
    gm = ir_graph(op, *args, dynamic=dynamic)
    lower = lowering(**{op.name: [provider]})
    lower(gm.graph)
    assert ir_calls(gm.graph) == []
    (name,) = lower.selected[op.name]
    assert lower.selected[op.name] == {name: provider}
    if provider == "unfused":  # the components were lowered too, each by its own priority
        assert {c.name for c in op.components} <= set(lower.selected)
    with preserved_priorities():
        op.set_default([provider])
        expected = op(*args)
    assert_outputs_close(op, run_graph(gm, *args), expected)


# ---------------------------------------------------------------------------------------------
# Providers registered by the test: selection follows dispatch on the fake inputs

TRACED: list[str] = []


def register_norm_with_fast_provider() -> IrOp:
    @register_op
    def norm(x: Tensor, weight: Tensor, epsilon: float, variance_size: int | None = None) -> Tensor:
        sample = x if variance_size is None else x[..., :variance_size]
        return x * torch.rsqrt(sample.pow(2).mean(-1, keepdim=True) + epsilon) * weight

    def whole_rows_only(
        x: Tensor, weight: Tensor, epsilon: float, variance_size: int | None = None
    ) -> bool:
        return variance_size is None

    @norm.register_impl("fast", supports_args=whole_rows_only)
    def norm_fast(
        x: Tensor, weight: Tensor, epsilon: float, variance_size: int | None = None
    ) -> Tensor:
        TRACED.append("fast")
        return x / torch.sqrt(x.square().mean(-1, keepdim=True) + epsilon) * weight

    norm.set_default(["fast", "native"])
    return norm


def test_selection_follows_each_nodes_arguments(isolated: dict[str, IrOp]) -> None:
    norm = register_norm_with_fast_provider()
    x, w = torch.randn(6, 32), torch.randn(32)

    def model(x: Tensor, w: Tensor) -> Tensor:
        return norm(x, w, 1e-6) + norm(x, w, 1e-6, variance_size=8)

    gm = ir_graph(model, x, w)
    names = [call.node.name for call in ir_calls(gm.graph)]
    TRACED.clear()
    lower = lowering()
    lower(gm.graph)
    assert lower.selected == {"norm": {names[0]: "fast", names[1]: "native"}}
    assert TRACED == ["fast"]
    torch.testing.assert_close(run_graph(gm, x, w), model(x, w))


def test_compile_priority_override_and_default(isolated: dict[str, IrOp]) -> None:
    norm = register_norm_with_fast_provider()
    x, w = torch.randn(6, 32), torch.randn(32)
    gm = ir_graph(lambda x, w: norm(x, w, 1e-6), x, w)
    lower = lowering(norm=["native"])
    lower(gm.graph)
    assert set(lower.selected["norm"].values()) == {"native"}
    assert norm.get_priority() == ["fast", "native"]  # restored after the pass


def test_keyword_arguments_and_omitted_defaults(isolated: dict[str, IrOp]) -> None:
    norm = register_norm_with_fast_provider()
    x, w = torch.randn(6, 32), torch.randn(32)

    def model(x: Tensor, w: Tensor) -> Tensor:
        return norm(x, weight=w, epsilon=1e-5) * norm(x, w, epsilon=1e-5, variance_size=4)

    gm = ir_graph(model, x, w)
    lower = lowering()
    lower(gm.graph)
    assert sorted(lower.selected["norm"].values()) == ["fast", "native"]
    torch.testing.assert_close(run_graph(gm, x, w), model(x, w))


# ---------------------------------------------------------------------------------------------
# The trace cache


def layers(x: Tensor, w: Tensor, n: int) -> Tensor:
    for _ in range(n):
        x = ops.rms_norm(x, w, 1e-6) * 1.5
    return x


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_identical_nodes_trace_once(dynamic: bool) -> None:
    x, w = torch.randn(7, 40), torch.randn(40)
    gm = ir_graph(lambda x, w: layers(x, w, 12), x, w, dynamic=dynamic)
    lower = lowering(rms_norm=["native"])
    lower(gm.graph)
    assert (lower.result.traces, lower.result.cache_hits) == (1, 11)
    assert len(lower.selected["rms_norm"]) == 12
    torch.testing.assert_close(run_graph(gm, x, w), layers(x, w, 12))

    uncached = ir_graph(lambda x, w: layers(x, w, 12), x, w, dynamic=dynamic)
    lower = IrLoweringPass(
        CompilePriorities(as_priority_config({"rms_norm": ["native"]})), cache=False
    )
    lower(uncached.graph)
    assert (lower.result.traces, lower.result.cache_hits) == (12, 0)


def storage_classes(gm: torch.fx.GraphModule, storage_of: Any) -> set[frozenset[str]]:
    """Nodes grouped by the storage of their value."""
    groups: dict[int, set[str]] = {}
    for node in gm.graph.nodes:
        if node.op == "output":
            continue
        key = storage_of(node)
        if key is not None:
            groups.setdefault(key, set()).add(node.name)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_reused_traces_keep_aliasing_visible(dynamic: bool) -> None:
    """Copies of a reused trace share fake values but not storage identities: grouped by
    storage, the nodes fall exactly as a fresh fake propagation of the graph puts them."""
    from torch.fx.passes.fake_tensor_prop import FakeTensorProp

    from ir_compile.fx_utils import detect_fake_mode, node_storage, storage_key

    def model(x: Tensor, w: Tensor) -> Tensor:
        for _ in range(3):  # the rotated halves are views of the input inside each trace
            x = ops.silu_and_mul(torch.cat([ops.rms_norm(x, w, 1e-6), x], -1)) + x[:, :1]
        return x

    x, w = torch.randn(7, 40), torch.randn(40)
    gm = ir_graph(model, x, w, dynamic=dynamic)
    lower = lowering(rms_norm=["native"], silu_and_mul=["native"])
    lower(gm.graph)
    assert lower.result.cache_hits == 4
    ours = storage_classes(gm, node_storage)
    placeholders = [n.meta["val"] for n in gm.graph.find_nodes(op="placeholder")]
    FakeTensorProp(gm, detect_fake_mode(placeholders)).propagate_dont_convert_inputs(*placeholders)
    fresh = storage_classes(gm, lambda n: storage_key(n.meta.get("val")))
    assert ours == fresh
    assert any(len(group) > 1 for group in fresh)  # views exist, so the check means something


def test_trace_key_tells_arguments_apart() -> None:
    x, w = torch.randn(8, 8), torch.randn(8)

    def model(x: Tensor, w: Tensor) -> Tensor:
        a = ops.rms_norm(x, w, 1e-6)
        b = ops.rms_norm(x, w, 1e-5)  # another epsilon
        c = ops.rms_norm(x.t(), w, 1e-6)  # other strides
        d = ops.rms_norm(x[:, :4], w[:4], 1e-6)  # other shape
        e = ops.rms_norm(x, w, 1e-6)  # same as a
        return a + b + c + d.sum() + e

    gm = ir_graph(model, x, w)
    lower = lowering(rms_norm=["native"])
    lower(gm.graph)
    assert (lower.result.traces, lower.result.cache_hits) == (4, 1)
    torch.testing.assert_close(run_graph(gm, x, w), model(x, w))


def test_same_node_twice_is_its_own_kind(isolated: dict[str, IrOp]) -> None:
    @register_op
    def mix(x: Tensor, y: Tensor) -> Tensor:
        return x * 2 + y

    a, b = torch.randn(4, 4), torch.randn(4, 4)

    def model(a: Tensor, b: Tensor) -> Tensor:
        return mix(a, a) + mix(a, b) + mix(b, b)

    gm = ir_graph(model, a, b)
    lower = lowering()
    lower(gm.graph)
    assert (lower.result.traces, lower.result.cache_hits) == (2, 1)
    torch.testing.assert_close(run_graph(gm, a, b), model(a, b))


# ---------------------------------------------------------------------------------------------
# Composite ops, nesting, outputs


def register_composite() -> tuple[IrOp, IrOp, IrOp]:
    @register_op
    def double(x: Tensor) -> Tensor:
        return x * 2

    @double.register_impl("fast")
    def double_fast(x: Tensor) -> Tensor:
        return x + x

    @register_op
    def shift(x: Tensor, by: float) -> Tensor:
        return x + by

    @register_op(composite_of=[double, shift])
    def double_then_shift(components: Components, x: Tensor, by: float) -> Tensor:
        doubled: Tensor = components.double(x)
        shifted: Tensor = components.shift(doubled, by)
        return shifted

    return double, shift, double_then_shift


def test_unfused_lowers_each_component_by_its_own_priority(isolated: dict[str, IrOp]) -> None:
    _, _, composite = register_composite()
    x = torch.randn(3, 5)
    gm = ir_graph(lambda x: composite(x, 0.5), x)
    lower = lowering(double_then_shift=["unfused"], double=["fast"], shift=["native"])
    lower(gm.graph)
    assert ir_calls(gm.graph) == []
    assert set(lower.selected) == {"double_then_shift", "double", "shift"}
    assert set(lower.selected["double"].values()) == {"fast"}
    assert set(lower.selected["double_then_shift"].values()) == {"unfused"}
    torch.testing.assert_close(run_graph(gm, x), x * 2 + 0.5)


def test_an_output_that_is_an_input_is_cloned(isolated: dict[str, IrOp]) -> None:
    @register_op
    def passthrough(x: Tensor) -> Tensor:
        return x.clone()

    @passthrough.register_impl("lazy")
    def passthrough_lazy(x: Tensor) -> Tensor:
        return x

    x = torch.randn(4)
    gm = ir_graph(passthrough, x)
    lowering(passthrough=["lazy"])(gm.graph)
    (output,) = gm.graph.find_nodes(op="output")
    returned = output.args[0]
    assert returned.op == "call_function" and returned.target is torch.ops.aten.clone.default
    out = run_graph(gm, x)
    assert out.data_ptr() != x.data_ptr()
    torch.testing.assert_close(out, x)


def test_tuple_outputs_and_unused_ones() -> None:
    x, r, w = torch.randn(4, 16), torch.randn(4, 16), torch.randn(16)

    def model(x: Tensor, r: Tensor, w: Tensor) -> Tensor:
        out, _ = ops.fused_add_rms_norm(x, r, w, 1e-6)
        _, residual = ops.fused_add_rms_norm(out, r, w, 1e-6)
        return residual

    gm = ir_graph(model, x, r, w)
    lowering(fused_add_rms_norm=["native"])(gm.graph)
    torch.testing.assert_close(run_graph(gm, x, r, w), model(x, r, w))


# ---------------------------------------------------------------------------------------------
# What cannot be lowered is left, and named


def test_an_implementation_that_does_not_trace_is_left_and_named(
    isolated: dict[str, IrOp], caplog: pytest.LogCaptureFixture
) -> None:
    @register_op
    def scaled(x: Tensor) -> Tensor:
        return x * 3

    @scaled.register_impl("host")
    def scaled_host(x: Tensor) -> Tensor:
        return x * float(x.abs().max().item() > -1) * 3  # data-dependent: no trace

    x = torch.randn(5)
    gm = ir_graph(lambda x: scaled(x) + 1, x)
    (call,) = ir_calls(gm.graph)
    lower = lowering(scaled=["host"])
    with caplog.at_level(logging.WARNING, logger="ir_compile"):
        lower(gm.graph)
    assert list(lower.result.not_lowered) == [call.node.name]
    assert "tracing provider 'host' failed" in lower.result.not_lowered[call.node.name]
    assert call.node.name in caplog.text and "could not lower" in caplog.text
    assert len(ir_calls(gm.graph)) == 1  # left for Inductor's fallback
    torch.testing.assert_close(run_graph(gm, x), x * 3 + 1)


def test_empty_compile_priority_lowers_native(isolated: dict[str, IrOp]) -> None:
    @register_op
    def triple(x: Tensor) -> Tensor:
        return x * 3

    assert triple.get_priority(compiling=True) == []  # CPU: no defaults
    x = torch.randn(5)
    gm = ir_graph(triple, x)
    lower = lowering()
    lower(gm.graph)
    assert set(lower.selected["triple"].values()) == {"native"}


def test_priority_config_forms_are_checked(isolated: dict[str, IrOp]) -> None:
    register_norm_with_fast_provider()
    assert as_priority_config("norm=native")["norm"] == ("native",)
    assert as_priority_config({"norm": ["fast", "native"]})["norm"] == ("fast", "native")
    config = IrOpPriorityConfig(norm=["native"])
    assert as_priority_config(config) is config
    with pytest.raises(ValueError, match="unknown provider 'nope'"):
        as_priority_config({"norm": ["nope"]})
    with pytest.raises(ValueError, match="unknown op 'nothing'"):
        as_priority_config("nothing=native")
    with pytest.raises(TypeError, match="priority must be"):
        as_priority_config(42)  # type: ignore[arg-type]
