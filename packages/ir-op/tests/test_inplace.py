"""maybe_inplace: in-place providers may reuse activation memory; the default overload never."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, IrOpInplace, enable_torch_wrap, register_op


def add_pair(x: Tensor, x_other: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    total = x + x_other
    return total * weight, total


def add_pair_inplace(x: Tensor, x_other: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    x_other.add_(x)
    x.copy_(x_other).mul_(weight)
    return x, x_other


@pytest.fixture
def op(isolated: dict[str, IrOp]) -> IrOpInplace:
    op = register_op(allow_inplace=True)(add_pair)
    assert isinstance(op, IrOpInplace)
    op.register_impl("inplace", inplace=True)(add_pair_inplace)
    return op


def _inputs() -> tuple[Tensor, Tensor, Tensor]:
    return torch.randn(4, 8), torch.randn(4, 8), torch.randn(8)


@pytest.mark.parametrize("wrap", [True, False])
def test_default_overload_never_mutates(op: IrOpInplace, wrap: bool) -> None:
    x, other, w = _inputs()
    x0, other0 = x.clone(), other.clone()
    with op.set_priority(["inplace"]), enable_torch_wrap(wrap):
        out, total = op(x, other, w)
    torch.testing.assert_close(x, x0)
    torch.testing.assert_close(other, other0)
    assert out.data_ptr() != x.data_ptr() and total.data_ptr() != other.data_ptr()
    ref_out, ref_total = add_pair(x0, other0, w)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(total, ref_total)


@pytest.mark.parametrize("wrap", [True, False])
def test_maybe_inplace_reuses_activation_buffers(op: IrOpInplace, wrap: bool) -> None:
    x, other, w = _inputs()
    ref_out, ref_total = add_pair(x, other, w)
    with op.set_priority(["inplace"]), enable_torch_wrap(wrap):
        out, total = op.maybe_inplace(x, other, w)
    assert out.data_ptr() == x.data_ptr()
    assert total.data_ptr() == other.data_ptr()
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(total, ref_total)


def test_maybe_inplace_with_a_functional_provider_leaves_inputs(op: IrOpInplace) -> None:
    x, other, w = _inputs()
    x0 = x.clone()
    with op.set_priority(["native"]):
        out, _ = op.maybe_inplace(x, other, w)
    torch.testing.assert_close(x, x0)
    assert out.data_ptr() != x.data_ptr()


def test_inplace_clones_keyword_activations(op: IrOpInplace) -> None:
    x, other, w = _inputs()
    other0 = other.clone()
    with op.set_priority(["inplace"]):
        op(x, x_other=other, weight=w)
    torch.testing.assert_close(other, other0)


def test_maybe_inplace_schema_and_names(op: IrOpInplace) -> None:
    assert op.maybe_inplace.name == "add_pair.maybe_inplace"
    schema = str(op.maybe_inplace.torch_op._schema)
    assert "Tensor(a0!) x, Tensor(a1!) x_other, Tensor weight" in schema
    assert op.torch_op._schema.is_mutable is False
    assert repr(op.maybe_inplace) == "IrOpInplaceOverload('add_pair')"


def test_inplace_impl_registration_on_inplace_op(op: IrOpInplace) -> None:
    impl = op.impls["inplace"]
    assert impl.inplace
    assert impl.functional_fn is not impl.impl_fn
    assert op.impls["native"].functional_fn is op.impls["native"].impl_fn


def test_functional_version_replaces_the_clones(isolated: dict[str, IrOp]) -> None:
    op = register_op(allow_inplace=True)(add_pair)
    calls: list[str] = []

    def out_of_place(x: Tensor, x_other: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
        calls.append("functional")
        return add_pair(x, x_other, weight)

    def in_place(x: Tensor, x_other: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
        calls.append("inplace")
        return add_pair_inplace(x, x_other, weight)

    impl = op.register_impl("both", inplace=True, functional=out_of_place)(in_place)
    assert impl.functional_fn is out_of_place and impl.impl_fn is in_place
    x, other, w = _inputs()
    x0 = x.clone()
    with op.set_priority(["both"]):
        out, _ = op(x, other, w)
        torch.testing.assert_close(x, x0)
        op.maybe_inplace(x, other, w)
    assert calls == ["functional", "inplace"]
    torch.testing.assert_close(x, out)


def test_functional_version_needs_an_inplace_impl(op: IrOpInplace) -> None:
    with pytest.raises(ValueError, match="functional= is the out-of-place version .* inplace=True"):
        op.register_impl("half", functional=add_pair)


def test_functional_version_must_have_the_native_signature(op: IrOpInplace) -> None:
    def other_signature(x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
        return x, weight

    with pytest.raises(ValueError, match="does not match the native schema"):
        op.register_impl("mismatch", inplace=True, functional=other_signature)
    assert "mismatch" not in op.impls


def test_the_torch_operator_returns_new_tensors(op: IrOpInplace) -> None:
    """PyTorch's rule for custom operators: no output may be an input (or alias one)."""
    x, other, w = _inputs()
    ref_out, ref_total = add_pair(x, other, w)
    with op.set_priority(["inplace"]):
        out, total = op.maybe_inplace.torch_op(x, other, w)
    assert {out.data_ptr(), total.data_ptr()}.isdisjoint({x.data_ptr(), other.data_ptr()})
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(total, ref_total)


def test_a_traced_call_leaves_the_torch_operator_in_the_graph(op: IrOpInplace) -> None:
    from torch.fx.experimental.proxy_tensor import make_fx

    x, other, w = _inputs()
    with op.set_priority(["inplace"]):
        graph = make_fx(op.maybe_inplace)(x, other, w)
    targets = [node.target for node in graph.graph.nodes]
    assert op.maybe_inplace.torch_op in targets
    assert torch.ops.aten.add_.Tensor not in targets  # the in-place impl ran untraced


def test_a_compiled_call_passes_torchs_aliasing_check(op: IrOpInplace) -> None:
    """With PyTorch's aliasing check an error (as when ``CI`` is set), a compiled graph that
    runs the operator still works."""
    config = torch._functorch.config
    if not hasattr(config, "error_on_custom_op_aliasing"):
        pytest.skip("this PyTorch does not check custom operators for aliasing")
    x, other, w = _inputs()
    ref_out, ref_total = add_pair(x, other, w)

    def model(x: Tensor, other: Tensor, w: Tensor) -> Tensor:
        out, total = op.maybe_inplace(x * 1, other * 1, w)
        return out + total

    torch._dynamo.reset()
    with op.set_priority(["inplace"]), config.patch(error_on_custom_op_aliasing=True):
        got = torch.compile(model, fullgraph=True)(x, other, w)
    torch._dynamo.reset()
    torch.testing.assert_close(got, ref_out + ref_total)
