"""silu_and_mul and gelu_and_mul against independent float64 references."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, ops
from ir_op.testing import assert_outputs_close, random_rows
from ir_op.testing.references import ref_gelu_and_mul, ref_silu_and_mul

pytestmark = pytest.mark.usefixtures("native_priorities")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
LEADING = [(), (1,), (7,), (83,), (2, 3, 5), (0,)]


def assert_matches(actual: Tensor, expected: Tensor, op: IrOp, dtype: torch.dtype) -> None:
    assert actual.dtype == dtype
    assert_outputs_close(op, actual, expected.to(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("half_width", [1, 4, 385])
@pytest.mark.parametrize("strided", [False, True])
def test_silu_and_mul(
    dtype: torch.dtype, leading: tuple[int, ...], half_width: int, strided: bool
) -> None:
    torch.manual_seed(half_width + len(leading))
    x = random_rows(leading, 2 * half_width, dtype, strided=strided)
    x0 = x.clone()
    out = ops.silu_and_mul(x)
    assert out.shape == (*leading, half_width)
    assert_matches(out, ref_silu_and_mul(x), ops.silu_and_mul, dtype)
    assert torch.equal(x, x0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("half_width", [1, 4, 385])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("strided", [False, True])
def test_gelu_and_mul(
    dtype: torch.dtype, leading: tuple[int, ...], half_width: int, approximate: str, strided: bool
) -> None:
    torch.manual_seed(half_width + len(leading))
    x = random_rows(leading, 2 * half_width, dtype, strided=strided)
    out = ops.gelu_and_mul(x, approximate)
    assert out.shape == (*leading, half_width)
    assert_matches(out, ref_gelu_and_mul(x, approximate), ops.gelu_and_mul, dtype)


def test_gelu_modes_differ_and_default_is_exact() -> None:
    x = 3 * torch.randn(16, 64)
    exact, tanh = ops.gelu_and_mul(x), ops.gelu_and_mul(x, "tanh")
    assert not torch.equal(exact, tanh)
    torch.testing.assert_close(exact, ref_gelu_and_mul(x, "none").float())
    torch.testing.assert_close(tanh, ref_gelu_and_mul(x, "tanh").float())


def test_one_rounding_in_float32() -> None:
    # silu and the product are float32; only the result is rounded to bfloat16
    x = torch.randn(8, 256, dtype=torch.bfloat16)
    gate, up = x[:, :128].float(), x[:, 128:].float()
    expected = (gate * torch.sigmoid(gate) * up).to(torch.bfloat16)
    torch.testing.assert_close(ops.silu_and_mul(x), expected, atol=0, rtol=0)


@pytest.mark.parametrize("op", [ops.silu_and_mul, ops.gelu_and_mul], ids=lambda o: o.name)
def test_odd_last_dimension_is_rejected(op: IrOp) -> None:
    with pytest.raises(
        ValueError, match=rf"{op.name}: x must have an even last dimension .* got shape \[2, 7\]"
    ):
        op(torch.randn(2, 7))


def test_gelu_and_mul_rejects_unknown_approximation() -> None:
    with pytest.raises(
        ValueError, match="gelu_and_mul: approximate must be one of 'none', 'tanh', got 'erf'"
    ):
        ops.gelu_and_mul(torch.randn(2, 8), "erf")


@pytest.mark.parametrize("op", [ops.silu_and_mul, ops.gelu_and_mul], ids=lambda o: o.name)
def test_nan_and_inf_stay_in_their_elements(op: IrOp) -> None:
    x = torch.randn(3, 8)
    x[0, 1] = float("nan")  # gate element 1 of row 0
    x[1, 6] = float("inf")  # up element 2 of row 1
    out = op(x)
    assert out[0, 1].isnan() and out[1, 2].isinf()
    mask = torch.ones_like(out, dtype=torch.bool)
    mask[0, 1] = mask[1, 2] = False
    reference = ref_silu_and_mul(x) if op is ops.silu_and_mul else ref_gelu_and_mul(x)
    torch.testing.assert_close(out[mask], reference.float()[mask])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("width", [2, 8, 64])
def test_gelu_of_infinite_gates_is_the_same_on_every_vector_width(
    approximate: str, width: int
) -> None:
    """gelu(+inf) = +inf and gelu(-inf) = NaN (``-inf * Phi(-inf)``), whichever CPU code path
    torch takes: its vectorized exact GELU returns NaN for +inf, its scalar one +inf."""
    gate = torch.zeros(1, width)
    gate[0, 0], gate[0, 1] = float("inf"), float("-inf")
    out = ops.gelu_and_mul.native_fn(torch.cat([gate, torch.ones(1, width)], dim=-1), approximate)
    assert out[0, 0].item() == float("inf")
    assert out[0, 1].isnan()
    assert (out[0, 2:] == 0).all()
