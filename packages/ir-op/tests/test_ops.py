"""The ops' native implementations against independent float64 references."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, enable_torch_wrap, ops
from ir_op.testing import preserved_priorities

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.fixture(autouse=True)
def _native_only() -> Iterator[None]:
    """These tests are about the native implementations: in a session whose platform has a
    kernel set, its providers would otherwise run (they have ir_op.testing.conformance)."""
    with preserved_priorities():
        for name in ops.__all__:
            getattr(ops, name).set_default(["native"])
        yield


# -- float64 references, written without the ops' helpers -------------------------------------


def ref_rms_norm(
    x: Tensor, weight: Tensor | None, eps: float, variance_size: int | None = None
) -> Tensor:
    x64 = x.double()
    sample = x64 if variance_size is None else x64[..., :variance_size]
    out = x64 / torch.sqrt((sample * sample).mean(-1, keepdim=True) + eps)
    return out if weight is None else out * weight.double()


def ref_fused_add_rms_norm(
    x: Tensor, residual: Tensor, weight: Tensor | None, eps: float, variance_size: int | None = None
) -> tuple[Tensor, Tensor]:
    total = x.double() + residual.double()
    return ref_rms_norm(total, weight, eps, variance_size), total


def ref_gelu(v: Tensor, approximate: str) -> Tensor:
    if approximate == "tanh":
        return 0.5 * v * (1 + torch.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
    return 0.5 * v * (1 + torch.erf(v / math.sqrt(2)))


def ref_gelu_and_mul_sparse(x: Tensor, multiplier: float, approximate: str = "none") -> Tensor:
    x64 = x.double()
    d = x.shape[-1] // 2
    gate, up = x64[..., :d], x64[..., d:]
    mean = gate.mean(-1, keepdim=True)
    std = ((gate - mean) ** 2).mean(-1, keepdim=True).sqrt()
    return ref_gelu(torch.clamp(gate - mean - std * multiplier, min=0), approximate) * up


def assert_matches(actual: Tensor, expected: Tensor, op: IrOp, dtype: torch.dtype) -> None:
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    torch.testing.assert_close(
        actual, expected.to(dtype), **op.get_tolerance(dtype), equal_nan=True
    )


# -- shapes -------------------------------------------------------------------------------------

LEADING = [(), (1,), (7,), (83,), (2, 3), (0,)]


def _x(leading: tuple[int, ...], width: int, dtype: torch.dtype, strided: bool) -> Tensor:
    if strided:
        # a column slice of a wider buffer: the rows are not adjacent in memory
        wide = torch.randn(*leading, width + 5, dtype=torch.float32).to(dtype)
        x = wide[..., 3 : 3 + width]
        assert not x.is_contiguous() or x.numel() <= width
        return x
    return torch.randn(*leading, width, dtype=torch.float32).to(dtype)


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
    with pytest.raises(ValueError, match=rf"variance_size={bad} must be in \[1, 64\]"):
        ops.rms_norm(torch.randn(2, 64), None, 1e-6, bad)


def test_rms_norm_weight_in_its_own_dtype() -> None:
    x = torch.randn(4, 32, dtype=torch.bfloat16)
    w = torch.randn(32, dtype=torch.float32)
    out = ops.rms_norm(x, w, 1e-6)
    assert out.dtype == torch.bfloat16
    normalized = (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)).to(
        torch.bfloat16
    )
    torch.testing.assert_close(out, (normalized.float() * w).to(torch.bfloat16), atol=0, rtol=0)


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
    with pytest.raises(ValueError, match="even last dimension .* got 7"):
        ops.gelu_and_mul_sparse(torch.randn(2, 7), 1.0)
    with pytest.raises(
        ValueError, match="approximate='fast' is not a GELU mode; valid: none, tanh"
    ):
        ops.gelu_and_mul_sparse(torch.randn(2, 8), 1.0, "fast")


# -- every op: generators, tolerances, opcheck, wrap ----------------------------------------

ALL_OPS = [ops.rms_norm, ops.fused_add_rms_norm, ops.gelu_and_mul_sparse]
REFERENCES: dict[str, Callable[..., object]] = {
    "rms_norm": ref_rms_norm,
    "fused_add_rms_norm": ref_fused_add_rms_norm,
    "gelu_and_mul_sparse": ref_gelu_and_mul_sparse,
}


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", DTYPES)
def test_input_generator(op: IrOp, dtype: torch.dtype) -> None:
    args = op.generate_inputs(num_tokens=7, hidden_size=96, dtype=dtype)
    tensors = [a for a in args if isinstance(a, Tensor)]
    assert tensors[0].shape[0] == 7 and tensors[0].dtype == dtype
    assert all(t.abs().sum() > 0 for t in tensors)
    op.signature.python.bind(*args)  # the generator produces a valid call
    expected = REFERENCES[op.name](*args)
    actual = op(*args)
    if isinstance(actual, tuple):
        for a, e in zip(actual, expected, strict=False):  # type: ignore[call-overload]
            assert_matches(a, e, op, dtype)
    else:
        assert_matches(actual, expected, op, dtype)  # type: ignore[arg-type]


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
def test_tolerances(op: IrOp) -> None:
    for dtype in DTYPES:
        tol = op.get_tolerance(dtype)
        assert tol["atol"] > 0 and tol["rtol"] > 0


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_opcheck(op: IrOp, dtype: torch.dtype) -> None:
    args = op.generate_inputs(num_tokens=5, hidden_size=48, dtype=dtype)
    torch.library.opcheck(op.torch_op, args)
    if op.allow_inplace:
        torch.library.opcheck(
            op.maybe_inplace.torch_op, op.generate_inputs(num_tokens=5, hidden_size=48, dtype=dtype)
        )  # type: ignore[attr-defined]


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
def test_wrap_on_and_off_agree(op: IrOp) -> None:
    args = op.generate_inputs(num_tokens=3, hidden_size=32, dtype=torch.float32)
    on = op(*args)
    with enable_torch_wrap(False):
        off = op(*args)
    torch.testing.assert_close(on, off, atol=0, rtol=0)
