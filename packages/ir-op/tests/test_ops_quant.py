"""FP8 quantization ops against float64 references."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, enable_torch_wrap, ops
from ir_op.ops.fp8 import FP8_DTYPES
from ir_op.testing import assert_outputs_close, random_rows
from ir_op.testing.references import ref_dynamic_scaled_fp8_quant, ref_static_scaled_fp8_quant

pytestmark = pytest.mark.usefixtures("native_priorities")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
LEADING = [(), (1,), (7,), (83,), (2, 3, 5), (0,)]
FP8_MAX = {torch.float8_e4m3fn: 448.0, getattr(torch, "float8_e4m3fnuz", None): 240.0}
static_quant, dynamic_quant = ops.static_scaled_fp8_quant, ops.dynamic_scaled_fp8_quant


def ref_quant(x: Tensor, scale: Tensor, fp8_dtype: torch.dtype) -> Tensor:
    return ref_static_scaled_fp8_quant(x, scale, fp8_dtype).to(fp8_dtype)


def ref_dynamic(
    x: Tensor, per_token: bool, scale_ub: Tensor | None, fp8_dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    q, scales = ref_dynamic_scaled_fp8_quant(x, per_token, scale_ub, fp8_dtype)
    return q.to(fp8_dtype), scales


def scale_of(value: float) -> Tensor:
    return torch.tensor([value], dtype=torch.float32)


# -- static ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fp8_dtype", FP8_DTYPES)
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("width", [1, 16, 769])
@pytest.mark.parametrize("strided", [False, True])
def test_static_matches_reference(
    dtype: torch.dtype,
    fp8_dtype: torch.dtype,
    leading: tuple[int, ...],
    width: int,
    strided: bool,
) -> None:
    torch.manual_seed(width + len(leading))
    x = 100 * random_rows(leading, width, dtype, strided=strided)  # some values saturate
    scale = scale_of(0.37)
    q = static_quant(x, scale, fp8_dtype)
    assert q.dtype == fp8_dtype and q.shape == x.shape
    assert_outputs_close(static_quant, q, ref_quant(x, scale, fp8_dtype))


@pytest.mark.parametrize("fp8_dtype", FP8_DTYPES)
def test_static_is_float32_division_then_one_cast(fp8_dtype: torch.dtype) -> None:
    x = torch.randn(64, 128, dtype=torch.bfloat16)
    scale = scale_of(0.013)
    limit = FP8_MAX[fp8_dtype]
    expected = (x.float() / scale).clamp(-limit, limit).to(fp8_dtype)
    assert torch.equal(static_quant(x, scale, fp8_dtype).float(), expected.float())


@pytest.mark.parametrize("fp8_dtype", FP8_DTYPES)
def test_static_saturates_and_keeps_nan(fp8_dtype: torch.dtype) -> None:
    limit = FP8_MAX[fp8_dtype]
    x = torch.tensor([1e6, -1e6, float("inf"), float("-inf"), float("nan"), 2.0])
    q = static_quant(x, scale_of(0.5), fp8_dtype).float()
    assert q[:4].tolist() == [limit, -limit, limit, -limit]
    assert q[4].isnan() and q[5] == 4.0


def test_static_default_format_and_scale_shapes() -> None:
    x = torch.randn(3, 8)
    assert static_quant(x, scale_of(0.1)).dtype == torch.float8_e4m3fn
    scalar = torch.tensor(0.1)  # a 0-d scale is one element too
    assert torch.equal(static_quant(x, scalar).float(), static_quant(x, scale_of(0.1)).float())


@pytest.mark.parametrize(
    ("scale", "error", "message"),
    [
        (torch.tensor([0.1, 0.2]), ValueError, r"scale must be a one-element float32 tensor, got "),
        (
            torch.tensor([0.1], dtype=torch.float16),
            ValueError,
            "got a torch.float16 tensor of shape",
        ),
        (0.1, TypeError, "scale must be a one-element float32 tensor, got 0.1"),
    ],
)
def test_static_rejects_bad_scales(scale: object, error: type[Exception], message: str) -> None:
    # wrap off: the native checks themselves (wrap on, the torch schema rejects non-tensors first)
    with enable_torch_wrap(False), pytest.raises(error, match=message):
        static_quant(torch.randn(2, 4), scale)
    with pytest.raises((error, RuntimeError), match=r"scale"):
        static_quant(torch.randn(2, 4), scale)


@pytest.mark.parametrize("op", [static_quant, dynamic_quant], ids=lambda o: o.name)
@pytest.mark.parametrize("bad", [torch.float16, torch.float8_e5m2])
@pytest.mark.parametrize("wrap", [True, False])
def test_unsupported_fp8_formats_are_rejected(op: IrOp, bad: torch.dtype, wrap: bool) -> None:
    args: tuple[object, ...] = (scale_of(0.1), bad) if op is static_quant else (False, None, bad)
    with (
        enable_torch_wrap(wrap),
        pytest.raises(ValueError, match=rf"fp8_dtype={bad} is not a supported fp8 format; valid: "),
    ):
        op(torch.randn(2, 4), *args)


@pytest.mark.parametrize("op", [static_quant, dynamic_quant], ids=lambda o: o.name)
def test_integer_input_is_rejected(op: IrOp) -> None:
    args: tuple[object, ...] = (scale_of(0.1),) if op is static_quant else ()
    with pytest.raises(
        ValueError,
        match=rf"{op.name}: x must be a floating-point tensor.*, got a torch.int32 tensor",
    ):
        op(torch.ones(2, 4, dtype=torch.int32), *args)


# -- dynamic --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fp8_dtype", FP8_DTYPES)
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("width", [1, 16, 769])
@pytest.mark.parametrize("per_token", [False, True])
@pytest.mark.parametrize("strided", [False, True])
def test_dynamic_matches_reference(
    dtype: torch.dtype,
    fp8_dtype: torch.dtype,
    leading: tuple[int, ...],
    width: int,
    per_token: bool,
    strided: bool,
) -> None:
    torch.manual_seed(width + len(leading))
    # rows of very different magnitudes: per-token scales differ
    x = random_rows(leading, width, dtype, strided=strided)
    if x.dim() > 1 and x.shape[0] > 1:
        x = x * torch.logspace(-2, 3, x.shape[0]).to(dtype).reshape(-1, *[1] * (x.dim() - 1))
    q, scales = dynamic_quant(x, per_token, None, fp8_dtype)
    ref_q, ref_scales = ref_dynamic(x, per_token, None, fp8_dtype)
    expected_shape = (*x.shape[:-1], 1) if per_token else (1,)
    assert scales.shape == expected_shape and scales.dtype == torch.float32
    assert q.shape == x.shape and q.dtype == fp8_dtype
    assert_outputs_close(dynamic_quant, (q, scales), (ref_q, ref_scales.float()))
    # the largest magnitude of each row (or of the tensor) lands on the fp8 maximum
    if x.numel():
        absq = q.float().abs()
        peak = absq.amax(-1, keepdim=True) if per_token else absq.amax().reshape(1)
        unfloored = ref_scales > 1 / (FP8_MAX[fp8_dtype] * 512)
        assert torch.all(peak[unfloored] == FP8_MAX[fp8_dtype])


def test_dynamic_quantized_equals_static_with_the_returned_scales() -> None:
    x = torch.randn(9, 40, dtype=torch.bfloat16)
    q, scale = dynamic_quant(x)
    assert torch.equal(q.float(), static_quant(x, scale).float())
    q_rows, scales = dynamic_quant(x, True)
    for row in range(9):
        expected = static_quant(x[row], scales[row]).float()
        assert torch.equal(q_rows[row].float(), expected)


@pytest.mark.parametrize("fp8_dtype", FP8_DTYPES)
def test_dynamic_scale_ub_bounds_rows_per_token_only(fp8_dtype: torch.dtype) -> None:
    limit = FP8_MAX[fp8_dtype]
    x = torch.tensor([[1.0, -8.0], [0.5, 0.25]])
    ub = scale_of(2.0)
    q, scales = dynamic_quant(x, True, ub, fp8_dtype)
    torch.testing.assert_close(scales, torch.tensor([[2.0 / limit], [0.5 / limit]]))
    assert q[0].float().tolist() == [limit / 2, -limit]  # -8 saturates under the bound
    _, per_tensor = dynamic_quant(x, False, ub, fp8_dtype)  # ignored per tensor
    torch.testing.assert_close(per_tensor, torch.tensor([8.0 / limit]))
    with pytest.raises(ValueError, match="scale_ub must be a one-element float32 tensor"):
        dynamic_quant(x, True, torch.tensor([1.0, 2.0]), fp8_dtype)


@pytest.mark.parametrize("per_token", [False, True])
def test_dynamic_floors_scales_of_zero_and_empty_inputs(per_token: bool) -> None:
    floor = 1 / (448.0 * 512)
    q, scales = dynamic_quant(torch.zeros(3, 8), per_token)
    torch.testing.assert_close(scales, torch.full_like(scales, floor))
    assert (q.float() == 0).all()
    q, scales = dynamic_quant(torch.zeros(0, 8), per_token)
    assert q.shape == (0, 8) and scales.shape == ((0, 1) if per_token else (1,))
    _, scales = dynamic_quant(torch.zeros(2, 0), per_token)
    torch.testing.assert_close(scales, torch.full_like(scales, floor))


def test_dynamic_non_finite_rows() -> None:
    x = torch.randn(3, 8)
    x[1, 2] = float("nan")
    x[2, 4] = float("inf")
    q, scales = dynamic_quant(x, True)
    assert torch.isfinite(scales[0]).all() and scales[1].isnan().all() and scales[2].isinf().all()
    assert not q[0].float().isnan().any() and q[1].float().isnan().all()
    assert q[2, 4].float().isnan() and (q[2, :4].float() == 0).all()
    _, scale = dynamic_quant(x)
    assert scale.isnan().all()


@pytest.mark.parametrize("fp8_dtype", list(FP8_DTYPES))
def test_dynamic_scale_is_the_quotient_rounded_once(ir_device: Any, fp8_dtype: torch.dtype) -> None:
    """On every device: CUDA turns a division by a Python number into a multiplication by its
    reciprocal, which is off by one ulp for about half of the amax values tried here."""
    x = torch.rand(4096, 1, device=ir_device.tensor_device) * 100 + 1
    _, scales = dynamic_quant(x, True, None, fp8_dtype)
    exact = (x.double() / FP8_MAX[fp8_dtype]).float()  # one rounding: float32 -> float64 is exact
    torch.testing.assert_close(scales, exact, atol=0, rtol=0)


def test_dynamic_rejects_zero_dimensional_input() -> None:
    with pytest.raises(
        ValueError,
        match="dynamic_scaled_fp8_quant: x must be a floating-point tensor with at least 1 dim",
    ):
        dynamic_quant(torch.tensor(1.0))


# -- generators and tolerances --------------------------------------------------------------


@pytest.mark.parametrize("fp8_dtype", FP8_DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_static_generator_calibrates_the_scale(fp8_dtype: torch.dtype, dtype: torch.dtype) -> None:
    x, scale, fmt = static_quant.generate_inputs(
        num_tokens=64, hidden_size=256, dtype=dtype, fp8_dtype=fp8_dtype
    )
    assert fmt is fp8_dtype and scale.shape == (1,) and scale.dtype == torch.float32
    limit = FP8_MAX[fp8_dtype]
    scaled = (x.float() / scale).abs()
    assert scaled.max() > limit * 0.999  # the full range is used...
    assert (scaled > limit * 1.0001).sum() == 0  # ...and nothing saturates
    assert_outputs_close(static_quant, static_quant(x, scale, fmt), ref_quant(x, scale, fmt))
    x, scale, _ = static_quant.generate_inputs(
        num_tokens=64, hidden_size=256, dtype=dtype, fp8_dtype=fp8_dtype, calibration=0.5
    )
    saturated = ((x.float() / scale).abs() > limit).float().mean()
    assert 0 < saturated < 0.1  # calibration < 1 saturates the tails only


@pytest.mark.parametrize("per_token", [False, True])
def test_dynamic_generator(per_token: bool) -> None:
    x, flag, ub, fmt = dynamic_quant.generate_inputs(
        num_tokens=5, hidden_size=48, dtype=torch.bfloat16, per_token=per_token, scale_ub=3.0
    )
    assert x.shape == (5, 48) and flag is per_token and fmt is torch.float8_e4m3fn
    assert ub.dtype == torch.float32 and ub.tolist() == [3.0]
    q, scales = dynamic_quant(x, flag, ub, fmt)
    ref_q, ref_scales = ref_dynamic(x, flag, ub, fmt)
    assert_outputs_close(dynamic_quant, (q, scales), (ref_q, ref_scales.float()))


@pytest.mark.parametrize("fp8_dtype", FP8_DTYPES)
def test_fp8_tolerance_is_one_step(fp8_dtype: torch.dtype) -> None:
    """Neighbouring fp8 values pass anywhere in the range; two steps apart do not."""
    values = torch.arange(256, dtype=torch.uint8).view(fp8_dtype).float()
    finite = values[torch.isfinite(values) & (values > 0)].unique().sort().values
    tol = static_quant.get_tolerance(fp8_dtype)
    lower, upper = finite[:-1], finite[1:]
    assert torch.all((upper - lower) <= tol["atol"] + tol["rtol"] * lower)
    # Two steps within one binade fail (across a power of two, two finer steps below it equal
    # one step above it, and pass); from 1 up, where atol is a negligible part of a step.
    normal = finite[finite >= 1]
    same_binade = normal[2:].log2().floor() == normal[:-2].log2().floor()
    two_apart = (normal[2:] - normal[:-2])[same_binade]
    assert torch.all(two_apart > tol["atol"] + tol["rtol"] * normal[2:][same_binade])
