"""register_op and IrOp: forms, names, schemas, errors."""

from __future__ import annotations

import gc

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, IrOpInplace, library, register_op
from ir_op.library import use_namespace


def scale(x: Tensor, factor: float, bias: Tensor | None = None) -> Tensor:
    """Multiply by a factor.

    More text that str() leaves out.
    """
    out = x * factor
    return out if bias is None else out + bias


def test_bare_decorator_uses_function_name(isolated: dict[str, IrOp]) -> None:
    op = register_op(scale)
    assert isinstance(op, IrOp)
    assert not isinstance(op, IrOpInplace)
    assert op.name == "scale"
    assert isolated == {"scale": op}
    assert op.impls.keys() == {"native"}
    assert op.torch_op is library.ops_namespace(library.get_library()).scale.default


def test_decorator_with_name_keyword_and_positional(isolated: dict[str, IrOp]) -> None:
    a = register_op(name="scale_a")(scale)
    b = register_op("scale_b")(scale)
    assert (a.name, b.name) == ("scale_a", "scale_b")
    assert set(isolated) == {"scale_a", "scale_b"}


def test_allow_inplace_returns_inplace_op(isolated: dict[str, IrOp]) -> None:
    def pair(x: Tensor, x_other: Tensor) -> tuple[Tensor, Tensor]:
        return x + x_other, x - x_other

    op = register_op(allow_inplace=True)(pair)
    assert isinstance(op, IrOpInplace)
    assert op.allow_inplace
    assert "Tensor(a0!) x" in str(op.maybe_inplace.torch_op._schema)
    assert "Tensor(a1!) x_other" in str(op.maybe_inplace.torch_op._schema)


def test_direct_construction_does_not_register(isolated: dict[str, IrOp]) -> None:
    op = IrOp("scale_direct", scale)
    assert "scale_direct" not in isolated
    x = torch.randn(3)
    torch.testing.assert_close(op(x, 2.0), x * 2)


def test_schema_is_inferred_from_annotations(isolated: dict[str, IrOp]) -> None:
    op = register_op(scale)
    assert op.schema == "(Tensor x, float factor, Tensor? bias=None) -> Tensor"


def test_default_activations_are_x_parameters(isolated: dict[str, IrOp]) -> None:
    def f(x: Tensor, weight: Tensor, x2: Tensor) -> Tensor:
        return x * weight + x2

    op = register_op(f)
    assert op.activations == ["x", "x2"]
    assert op.activation_indices == [0, 2]
    op2 = register_op(name="f_custom", activations=["weight"])(f)
    assert op2.activations == ["weight"]
    assert op2.activation_indices == [1]


@pytest.mark.parametrize("name", ["Scale", "1scale", "scale-op", "", "scale op", "ßcale"])
def test_invalid_op_names_are_rejected(isolated: dict[str, IrOp], name: str) -> None:
    with pytest.raises(ValueError, match="name .* is invalid"):
        register_op(name=name)(scale)
    assert isolated == {}


def test_duplicate_name_is_rejected_and_first_kept(isolated: dict[str, IrOp]) -> None:
    first = register_op(scale)
    with pytest.raises(ValueError, match="already registered"):
        register_op(name="scale")(scale)
    assert isolated == {"scale": first}


def test_duplicate_torch_definition_is_rejected(isolated: dict[str, IrOp]) -> None:
    IrOp("twice", scale)
    with pytest.raises(ValueError, match="already defined in torch.ops"):
        IrOp("twice", scale)


def test_keyword_only_parameter_is_rejected(isolated: dict[str, IrOp]) -> None:
    def f(x: Tensor, *, factor: float) -> Tensor:
        return x * factor

    with pytest.raises(ValueError, match="'factor' is keyword-only"):
        register_op(f)
    assert isolated == {}


def test_missing_annotation_is_rejected(isolated: dict[str, IrOp]) -> None:
    def f(x: Tensor, factor) -> Tensor:  # type: ignore[no-untyped-def]
        return x * factor

    with pytest.raises(ValueError, match="'factor' has no type annotation"):
        register_op(f)

    def g(x: Tensor):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(ValueError, match="return type is not annotated"):
        register_op(g)
    assert isolated == {}


def test_uninferable_signature_asks_for_explicit_schema(isolated: dict[str, IrOp]) -> None:
    def f(x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return x, y

    with pytest.raises(ValueError, match="pass schema="):
        register_op(f)
    op = register_op(schema="(Tensor x, Tensor? y) -> (Tensor, Tensor?)")(f)
    assert op.schema == "(Tensor x, Tensor? y) -> (Tensor, Tensor?)"
    x = torch.randn(2)
    out, none = op(x, None)
    torch.testing.assert_close(out, x)
    assert none is None


def test_explicit_schema_impls_are_held_to_evaluated_annotations(
    isolated: dict[str, IrOp],
) -> None:
    def f(x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return x, y

    op = register_op(schema="(Tensor x, Tensor? y) -> (Tensor, Tensor?)")(f)

    def same(x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return x, y

    # as if written without `from __future__ import annotations`: real types, not strings
    same.__annotations__ = {"x": torch.Tensor, "y": torch.Tensor | None, "return": tuple[
        torch.Tensor, torch.Tensor | None]}  # fmt: skip
    op.register_impl("same")(same)

    def other(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        return x, y

    with pytest.raises(ValueError, match="does not match the native signature"):
        op.register_impl("other")(other)
    assert set(op.impls) == {"native", "same"}


def test_explicit_schema_must_name_the_same_arguments(isolated: dict[str, IrOp]) -> None:
    def f(x: Tensor, y: Tensor) -> Tensor:
        return x + y

    with pytest.raises(ValueError, match=r"names the arguments \['x', 'z'\]"):
        register_op(schema="(Tensor x, Tensor z) -> Tensor")(f)
    with pytest.raises(ValueError, match="does not parse"):
        register_op(schema="(Tensor x, Tensor y -> Tensor")(f)
    assert isolated == {}


def test_allow_inplace_needs_one_tensor_output_per_activation(isolated: dict[str, IrOp]) -> None:
    def f(x: Tensor, x_other: Tensor) -> Tensor:
        return x + x_other

    with pytest.raises(ValueError, match="one Tensor output per activation"):
        register_op(allow_inplace=True)(f)
    assert isolated == {}


def test_unknown_activation_is_rejected(isolated: dict[str, IrOp]) -> None:
    with pytest.raises(ValueError, match="activation 'y' is not a parameter"):
        register_op(activations=["y"])(scale)


def test_repr_and_str(isolated: dict[str, IrOp]) -> None:
    op = register_op(scale)
    assert repr(op) == "IrOp('scale')"
    assert str(op) == "IrOp('scale') - Multiply by a factor."

    def bare(x: Tensor) -> Tensor:
        return x

    assert str(register_op(bare)) == "IrOp('bare')"


def test_register_fake_replaces_the_meta_kernel(isolated: dict[str, IrOp]) -> None:
    op = register_op(scale)
    calls = []

    @op.register_fake
    def fake(x: Tensor, factor: float, bias: Tensor | None = None) -> Tensor:
        calls.append(factor)
        return torch.empty_like(x)

    out = op(torch.empty(4, device="meta"), 3.0)
    assert out.shape == (4,)
    assert calls == [3.0]
    with pytest.raises(TypeError, match="takes a callable"):
        op.register_fake(42)  # type: ignore[type-var]


def test_input_generator_and_tolerances(isolated: dict[str, IrOp]) -> None:
    op = register_op(scale)
    assert not op.has_input_generator
    with pytest.raises(RuntimeError, match="no input generator"):
        op.generate_inputs(num_tokens=1, hidden_size=4, dtype=torch.float32)

    @op.register_input_generator
    def gen(
        num_tokens: int, hidden_size: int, dtype: torch.dtype, device: str | None = None
    ) -> tuple[object, ...]:
        return torch.randn(num_tokens, hidden_size, dtype=dtype, device=device), 2.0

    assert op.has_input_generator
    x, factor = op.generate_inputs(num_tokens=3, hidden_size=5, dtype=torch.float16)
    assert x.shape == (3, 5) and x.dtype == torch.float16 and factor == 2.0

    assert op.get_tolerance(torch.bfloat16) == {"atol": 1e-3, "rtol": 1.6e-2}
    assert op.get_tolerance(torch.float32) == {"atol": 1e-5, "rtol": 1.3e-6}
    assert op.get_tolerance(torch.int8) == {"atol": 1, "rtol": 0}
    op.override_tolerance(torch.bfloat16, atol=1e-2, rtol=2e-2)
    assert op.get_tolerance(torch.bfloat16) == {"atol": 1e-2, "rtol": 2e-2}
    with pytest.raises(ValueError, match="no tolerance for dtype torch.complex64"):
        op.get_tolerance(torch.complex64)
    with pytest.raises(ValueError, match="atol must be a number >= 0"):
        op.override_tolerance(torch.float32, atol=-1, rtol=0)
    with pytest.raises(TypeError, match="expected a torch.dtype"):
        op.override_tolerance("float32", atol=1, rtol=0)  # type: ignore[arg-type]
    assert op.get_tolerance(torch.float32) == {"atol": 1e-5, "rtol": 1.3e-6}


def test_an_op_keeps_its_operator_after_its_namespace_block(isolated: dict[str, IrOp]) -> None:
    """Torch drops a library's operators when the library is collected; ``use_namespace``
    creates one per block, so the op must keep it alive (it once failed with an internal
    assert about a missing schema once the block's library was gone)."""
    with use_namespace("ir_test_kept_alive"):

        @register_op
        def kept_double(x: Tensor) -> Tensor:
            return x * 2

    gc.collect()
    assert torch.equal(kept_double(torch.ones(2)), torch.full((2,), 2.0))
    assert torch.equal(
        torch.ops.ir_test_kept_alive.kept_double(torch.ones(2)), torch.full((2,), 2.0)
    )
