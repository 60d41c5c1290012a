"""Norm ops and the sparse GeGLU against independent float64 references."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, ops
from ir_op.testing import assert_outputs_close, random_rows
from ir_op.testing.references import (
    ref_fused_add_rms_norm,
    ref_gelu_and_mul_sparse,
    ref_rms_norm,
)

pytestmark = pytest.mark.usefixtures("native_priorities")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def assert_matches(actual: Tensor, expected: Tensor, op: IrOp, dtype: torch.dtype) -> None:
    """``actual`` has ``dtype`` and matches the float64 reference rounded to it."""
    assert actual.dtype == dtype
    assert_outputs_close(op, actual, expected.to(dtype))


# -- shapes -------------------------------------------------------------------------------------

LEADING = [(), (1,), (7,), (83,), (2, 3), (0,)]


def _x(leading: tuple[int, ...], width: int, dtype: torch.dtype, strided: bool) -> Tensor:
    x = random_rows(leading, width, dtype, strided=strided)
    assert not strided or not x.is_contiguous() or x.numel() <= width
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("hidden", [8, 769])
@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("with_weight", [True, False])
def test_rms_norm(
    dtype: torch.dtype, leading: tuple[int, ...], hidden: int, strided: bool, with_weight: bool
) -> None:
    torch.manual_seed(hidden + len(leading))
    x = _x(leading, hidden, dtype, strided)
    w = (1 + 0.5 * torch.randn(hidden)).to(dtype) if with_weight else None
    assert_matches(ops.rms_norm(x, w, 1e-5), ref_rms_norm(x, w, 1e-5), ops.rms_norm, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_variance_size(dtype: torch.dtype) -> None:
    x = torch.randn(5, 64).to(dtype)
    w = torch.randn(64).to(dtype)
    out = ops.rms_norm(x, w, 1e-6, 16)
    assert_matches(out, ref_rms_norm(x, w, 1e-6, 16), ops.rms_norm, dtype)
    # the statistic comes from the first 16 columns only
    x2 = x.clone()
    x2[:, 16:] *= 3
    torch.testing.assert_close(
        ops.rms_norm(x2, None, 1e-6, 16)[:, :16], ops.rms_norm(x, None, 1e-6, 16)[:, :16]
    )


@pytest.mark.parametrize("bad", [0, -1, 65])
def test_rms_norm_rejects_bad_variance_size(bad: int) -> None:
    with pytest.raises(
        ValueError, match=rf"rms_norm: variance_size must be None or an int in \[1, 64\].*got {bad}"
    ):
        ops.rms_norm(torch.randn(2, 64), None, 1e-6, bad)


def test_rms_norm_float32_weight_means_one_rounding() -> None:
    # vLLM IR's rule: normalized_fp32.to(weight.dtype) * weight, then cast to x.dtype.
    x = torch.randn(4, 32, dtype=torch.bfloat16)
    w = torch.randn(32, dtype=torch.float32)
    out = ops.rms_norm(x, w, 1e-6)
    assert out.dtype == torch.bfloat16
    normalized = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(out, (normalized * w).to(torch.bfloat16), atol=0, rtol=0)


def test_rms_norm_nan_and_inf_stay_in_their_rows() -> None:
    x = torch.randn(4, 16)
    x[1, 3] = float("nan")
    x[2, 5] = float("inf")
    out = ops.rms_norm(x, None, 1e-6)
    assert out[1].isnan().all() and out[2].isnan().any()
    assert torch.isfinite(out[[0, 3]]).all()
    torch.testing.assert_close(out[[0, 3]], ref_rms_norm(x[[0, 3]], None, 1e-6).float())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("hidden", [8, 769])
@pytest.mark.parametrize("strided", [False, True])
def test_fused_add_rms_norm(
    dtype: torch.dtype, leading: tuple[int, ...], hidden: int, strided: bool
) -> None:
    torch.manual_seed(hidden)
    x = _x(leading, hidden, dtype, strided)
    r = _x(leading, hidden, dtype, strided)
    w = (1 + 0.5 * torch.randn(hidden)).to(dtype)
    x0, r0 = x.clone(), r.clone()
    out, residual = ops.fused_add_rms_norm(x, r, w, 1e-6)
    ref_out, ref_residual = ref_fused_add_rms_norm(x, r, w, 1e-6)
    assert_matches(out, ref_out, ops.fused_add_rms_norm, dtype)
    assert_matches(residual, ref_residual, ops.fused_add_rms_norm, dtype)
    torch.testing.assert_close(x, x0, atol=0, rtol=0)
    torch.testing.assert_close(r, r0, atol=0, rtol=0)


def test_fused_add_rms_norm_normalizes_the_unrounded_sum() -> None:
    x = torch.randn(3, 256, dtype=torch.bfloat16)
    r = torch.randn(3, 256, dtype=torch.bfloat16)
    out, residual = ops.fused_add_rms_norm(x, r, None, 1e-6)
    total = x.float() + r.float()
    expected = (total * torch.rsqrt(total.pow(2).mean(-1, keepdim=True) + 1e-6)).to(torch.bfloat16)
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    torch.testing.assert_close(residual, total.to(torch.bfloat16), atol=0, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("half_width", [4, 385])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("strided", [False, True])
def test_gelu_and_mul_sparse(
    dtype: torch.dtype, leading: tuple[int, ...], half_width: int, approximate: str, strided: bool
) -> None:
    torch.manual_seed(half_width)
    x = _x(leading, 2 * half_width, dtype, strided)
    out = ops.gelu_and_mul_sparse(x, 1.6448536269514722, approximate)
    assert_matches(
        out,
        ref_gelu_and_mul_sparse(x, 1.6448536269514722, approximate),
        ops.gelu_and_mul_sparse,
        dtype,
    )


def test_gelu_and_mul_sparse_sparsity() -> None:
    x = torch.randn(64, 2048)
    out = ops.gelu_and_mul_sparse(x, 1.6448536269514722)
    zero_fraction = (out == 0).float().mean().item()
    assert 0.9 < zero_fraction < 0.99  # about 95% of a normal gate falls below mean + 1.645 std
    dense = ops.gelu_and_mul_sparse(x, -100.0)
    assert (dense == 0).float().mean().item() < 0.01


def test_gelu_and_mul_sparse_errors() -> None:
    with pytest.raises(
        ValueError,
        match=r"gelu_and_mul_sparse: x must have an even last dimension .* got shape \[2, 7\]",
    ):
        ops.gelu_and_mul_sparse(torch.randn(2, 7), 1.0)
    with pytest.raises(
        ValueError,
        match="gelu_and_mul_sparse: approximate must be one of 'none', 'tanh', got 'fast'",
    ):
        ops.gelu_and_mul_sparse(torch.randn(2, 8), 1.0, "fast")
