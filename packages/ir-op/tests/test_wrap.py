"""Torch wrap on: one opaque node per call. Off: Python dispatch, traced through."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

from ir_op import IrOp, enable_torch_wrap, register_op, set_default_torch_wrap, torch_wrap_enabled


def scale(x: Tensor, factor: float) -> Tensor:
    return x * factor + 1


def _ir_nodes(gm: torch.fx.GraphModule, op: IrOp) -> list[torch.fx.Node]:
    return [n for n in gm.graph.nodes if n.op == "call_function" and n.target is op.torch_op]


def test_default_is_on() -> None:
    assert torch_wrap_enabled()


def test_symbolic_trace_sees_one_node_when_on(isolated: dict[str, IrOp]) -> None:
    op = register_op(scale)
    gm = torch.fx.symbolic_trace(lambda x: op(x, 2.0))
    assert len(_ir_nodes(gm, op)) == 1
    with enable_torch_wrap(False):
        gm_off = torch.fx.symbolic_trace(lambda x: op(x, 2.0))
    assert _ir_nodes(gm_off, op) == []
    x = torch.randn(4)
    torch.testing.assert_close(gm(x), gm_off(x))


def test_make_fx_sees_one_node_when_on(isolated: dict[str, IrOp]) -> None:
    op = register_op(scale)
    x = torch.randn(4)
    gm = make_fx(lambda x: op(x, 2.0))(x)
    assert len(_ir_nodes(gm, op)) == 1
    with enable_torch_wrap(False):
        gm_off = make_fx(lambda x: op(x, 2.0))(x)
    assert _ir_nodes(gm_off, op) == []
    targets = {n.target for n in gm_off.graph.nodes if n.op == "call_function"}
    assert torch.ops.aten.mul.Tensor in targets
    torch.testing.assert_close(gm(x), gm_off(x))


def test_torch_compile_keeps_the_node_when_on(isolated: dict[str, IrOp]) -> None:
    op = register_op(scale)
    graphs: list[torch.fx.GraphModule] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list[Tensor]) -> object:
        graphs.append(gm)
        return gm.forward

    x = torch.randn(4)
    torch.compile(lambda x: op(x, 2.0), backend=backend, fullgraph=True)(x)
    assert len(_ir_nodes(graphs[-1], op)) == 1
    with enable_torch_wrap(False):
        torch._dynamo.reset()
        out = torch.compile(lambda x: op(x, 2.0), backend=backend, fullgraph=True)(x)
    assert _ir_nodes(graphs[-1], op) == []
    torch.testing.assert_close(out, x * 2 + 1)


def test_context_manager_restores_on_exception() -> None:
    with pytest.raises(RuntimeError), enable_torch_wrap(False):
        assert not torch_wrap_enabled()
        raise RuntimeError("boom")
    assert torch_wrap_enabled()


def test_set_default_is_permanent() -> None:
    try:
        set_default_torch_wrap(False)
        assert not torch_wrap_enabled()
        with enable_torch_wrap(True):
            assert torch_wrap_enabled()
        assert not torch_wrap_enabled()
    finally:
        set_default_torch_wrap(True)


@pytest.mark.parametrize("bad", [1, "off", None])
def test_non_bool_flags_are_rejected(bad: object) -> None:
    with pytest.raises(TypeError, match="must be True or False"):
        set_default_torch_wrap(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be True or False"), enable_torch_wrap(bad):  # type: ignore[arg-type]
        pass
    assert torch_wrap_enabled()


def test_results_agree_both_ways(isolated: dict[str, IrOp]) -> None:
    op = register_op(scale)
    x = torch.randn(3, 5)
    on = op(x, 3.0)
    with enable_torch_wrap(False):
        off = op(x, 3.0)
    torch.testing.assert_close(on, off)
    torch.testing.assert_close(on, x * 3 + 1)


# -- is_traced_call: when maybe_inplace must take its torch operator ----------------------------


def test_plain_eager_values_are_not_traced() -> None:
    from ir_op.wrap import is_traced_call

    x = torch.randn(2, 3)
    assert not is_traced_call((x, torch.nn.Parameter(torch.randn(3)), 1e-6, None, "tanh"))
    assert not is_traced_call(())
    with torch.device("cpu"):  # a torch-function mode, which does not trace
        assert not is_traced_call((x,))


def test_fakes_proxies_modes_and_dynamo_are_traced() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    from ir_op.wrap import is_traced_call

    x = torch.randn(2, 3)
    with FakeTensorMode() as mode:
        fake = mode.from_tensor(x)
        assert is_traced_call((x,)), "under a dispatch mode"
    assert is_traced_call((x, fake)), "a FakeTensor, the mode gone"
    graph = torch.fx.Graph()
    assert is_traced_call((torch.fx.Proxy(graph.placeholder("x")),))
    seen: list[bool] = []

    def compiled(t: Tensor) -> Tensor:
        seen.append(is_traced_call((t,)))
        return t + 1

    torch._dynamo.reset()
    torch.compile(compiled, backend="eager", fullgraph=True)(x)
    torch._dynamo.reset()
    assert seen == [True]
