"""InplaceFunctionalizationPass on Dynamo's graphs (captured before AOTAutograd)."""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import Tensor

from ir_compile.fx_utils import ir_calls
from ir_compile.passes.inplace import (
    DONATES_META_KEY,
    DonatedActivationReadError,
    InplaceFunctionalizationPass,
)
from ir_compile.testing import run_graph
from ir_op import ops


@pytest.fixture(autouse=True)
def fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def dynamo_graph(
    fn: Callable[..., Any], *args: Any, inplace: InplaceFunctionalizationPass | None = None
) -> torch.fx.GraphModule:
    """The graph Dynamo hands a backend (what Inductor's pre-grad passes see), with ``inplace``
    run on it inside the backend call (Dynamo drops the placeholders' ``grapharg`` after it);
    an error of the pass is raised here."""
    graphs: list[torch.fx.GraphModule] = []
    errors: list[Exception] = []

    def capture(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        graphs.append(gm)
        if inplace is not None:
            try:
                inplace(gm.graph)
            except DonatedActivationReadError as e:
                errors.append(e)
        return gm.forward

    torch.compile(fn, backend=capture, fullgraph=True)(*args)
    if errors:
        raise errors[0]
    (gm,) = graphs
    return gm


def norm_args() -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(*shape, generator=g) for shape in ((4, 16), (4, 16), (16,)))  # type: ignore[return-value]


def overloads(gm: torch.fx.GraphModule) -> list[str]:
    return [call.overload for call in ir_calls(gm.graph)]


def test_graph_inputs_are_donated_and_the_call_made_functional() -> None:
    def fn(x: Tensor, r: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        return ops.fused_add_rms_norm.maybe_inplace(x, r, w, 1e-6)

    inplace = InplaceFunctionalizationPass()
    gm = dynamo_graph(fn, *norm_args(), inplace=inplace)
    assert overloads(gm) == ["default"]
    placeholders = [p.name for p in gm.graph.find_nodes(op="placeholder")]
    assert inplace.donated_inputs == placeholders[:2]
    (call,) = ir_calls(gm.graph)
    assert call.node.meta["custom"][DONATES_META_KEY] == ["x", "x_residual"]
    assert inplace.retargeted == [call.node.name]
    torch.testing.assert_close(run_graph(gm, *norm_args()), tuple(fn(*norm_args())))


def test_intermediate_activations_donate_no_input() -> None:
    def fn(x: Tensor, r: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        out, residual = ops.fused_add_rms_norm.maybe_inplace(x * 2, r + 1, w, 1e-6)
        return out, residual

    inplace = InplaceFunctionalizationPass()
    gm = dynamo_graph(fn, *norm_args(), inplace=inplace)
    assert overloads(gm) == ["default"]
    assert inplace.donated_inputs == []
    (call,) = ir_calls(gm.graph)
    assert DONATES_META_KEY not in call.node.meta.get("custom", {})


def test_a_view_of_a_graph_input_donates_the_input() -> None:
    def fn(x: Tensor, r: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        return ops.fused_add_rms_norm.maybe_inplace(x[1:], r[1:] * 2, w, 1e-6)

    inplace = InplaceFunctionalizationPass()
    gm = dynamo_graph(fn, *norm_args(), inplace=inplace)
    assert inplace.donated_inputs == [next(iter(gm.graph.find_nodes(op="placeholder"))).name]


def test_reading_a_donated_activation_later_is_an_error_naming_the_nodes() -> None:
    def fn(x: Tensor, r: Tensor, w: Tensor) -> Tensor:
        h = x * 2
        out, _ = ops.fused_add_rms_norm.maybe_inplace(h, r, w, 1e-6)
        return out + h

    with pytest.raises(DonatedActivationReadError) as raised:
        dynamo_graph(fn, *norm_args(), inplace=InplaceFunctionalizationPass())
    message = str(raised.value)
    assert "fused_add_rms_norm.maybe_inplace (node 'fused_add_rms_norm_maybe_inplace')" in message
    assert "donates its activation 'x' (node 'h')" in message
    assert "node 'add' uses it afterwards" in message


def test_reading_through_an_earlier_view_is_an_error() -> None:
    def fn(x: Tensor, r: Tensor, w: Tensor) -> Tensor:
        h = x * 2
        view = h[:2]
        out, _ = ops.fused_add_rms_norm.maybe_inplace(h, r, w, 1e-6)
        return out + view.sum()

    with pytest.raises(DonatedActivationReadError, match="through its view 'view'"):
        dynamo_graph(fn, *norm_args(), inplace=InplaceFunctionalizationPass())


def test_reads_before_the_call_are_fine() -> None:
    def fn(x: Tensor, r: Tensor, w: Tensor) -> Tensor:
        h = x * 2
        before = h.sum()
        out, residual = ops.fused_add_rms_norm.maybe_inplace(h, r, w, 1e-6)
        return out + before + residual

    gm = dynamo_graph(fn, *norm_args(), inplace=InplaceFunctionalizationPass())
    assert overloads(gm) == ["default"]
    torch.testing.assert_close(run_graph(gm, *norm_args())[0], fn(*norm_args()))


def rotary_args(with_key: bool) -> tuple[Any, ...]:
    torch.manual_seed(0)
    return ops.rotary_embedding.generate_inputs(
        num_tokens=4, hidden_size=64, dtype=torch.float32, with_key=with_key
    )


def rotate_in_place(*args: Any) -> tuple[Tensor, Tensor | None]:
    return ops.rotary_embedding.maybe_inplace(*args)


def test_a_call_without_its_optional_activation_is_made_functional() -> None:
    gm = dynamo_graph(
        rotate_in_place, *rotary_args(with_key=False), inplace=InplaceFunctionalizationPass()
    )
    assert overloads(gm) == ["default"]


def test_a_call_whose_absent_output_is_used_stays() -> None:
    gm = dynamo_graph(rotate_in_place, *rotary_args(with_key=False))
    (call,) = ir_calls(gm.graph)
    (output,) = gm.graph.find_nodes(op="output")
    with gm.graph.inserting_before(output):
        absent = gm.graph.call_function(operator.getitem, (call.node, 1))
        gm.graph.call_function(torch.neg, (absent,))  # a user of the empty placeholder output
    InplaceFunctionalizationPass()(gm.graph)
    assert overloads(gm) == ["maybe_inplace"]


def test_inputs_of_a_nested_region_are_not_donated() -> None:
    region: Any = torch.compiler.nested_compile_region
    if "max_reuse_entries" in inspect.signature(region).parameters:
        region = region(max_reuse_entries=8)

    @region
    def layer(x: Tensor, r: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        return ops.fused_add_rms_norm.maybe_inplace(x, r, w, 1e-6)

    def fn(x: Tensor, r: Tensor, w: Tensor) -> Tensor:
        a, b = layer(x, r, w)  # the outer graph's inputs go into the region
        c, d = layer(a, b, w)
        return c + d

    donated: dict[str, list[str]] = {}

    def capture(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        for name, sub in gm.named_modules():
            if isinstance(sub, torch.fx.GraphModule) and sub is not gm:
                inplace = InplaceFunctionalizationPass()
                inplace(sub.graph)  # as Inductor runs it: inside the backend call
                assert overloads(sub) == ["default"]
                donated[name] = inplace.donated_inputs
        return gm.forward

    torch.compile(fn, backend=capture, fullgraph=True)(*norm_args())
    assert donated, "Dynamo made no subgraph"
    assert all(names == [] for names in donated.values())
