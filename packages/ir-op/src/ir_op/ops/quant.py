"""FP8 quantization ops: static (a given scale) and dynamic (scales computed from the input).

The fp8 format is an argument (``fp8_dtype``, a ``torch.dtype``; schema type ``ScalarType``):
``torch.float8_e4m3fn``, or ``torch.float8_e4m3fnuz`` where torch has it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ir_op.op import register_op
from ir_op.ops._checks import FLOATING_DTYPES, NOT_ARGUMENTS, check_bool, check_float_tensor
from ir_op.ops._inputs import activations, fp8_scale_for
from ir_op.ops.fp8 import (
    FP8_DTYPES,
    allow_one_fp8_step,
    check_fp8_dtype,
    check_scale,
    fp8_max,
    min_dynamic_scale,
)


def quantize(x: Tensor, scale: Tensor, fp8_dtype: torch.dtype) -> Tensor:
    """``clamp(x / scale, -max, max)`` in float32, cast to ``fp8_dtype``; ``scale`` broadcasts.

    Float32 for float64 ``x`` too: an fp8 result (and a float32 scale) gains nothing from more.
    """
    limit = fp8_max(fp8_dtype)
    return (x.float() / scale).clamp(-limit, limit).to(fp8_dtype)


def is_static_scale(scale: Tensor) -> bool:
    """A one-element float32 tensor (raises ``AttributeError`` for a non-tensor)."""
    return scale.dtype == torch.float32 and scale.numel() == 1


def check_static_quant_args(op: str, scale: object, fp8_dtype: object) -> None:
    """The static quantization arguments: a one-element float32 ``scale``, an fp8 format (the
    complete check, for validators whose fast path did not accept them)."""
    if not (isinstance(scale, Tensor) and scale.dtype == torch.float32 and scale.numel() == 1):
        check_scale(scale, "scale", op)
    if type(fp8_dtype) is not torch.dtype or fp8_dtype not in FP8_DTYPES:
        check_fp8_dtype(fp8_dtype, op)


def _validate_static_scaled_fp8_quant(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = torch.float8_e4m3fn
) -> None:
    try:
        if x.dtype in FLOATING_DTYPES and is_static_scale(scale) and fp8_dtype in FP8_DTYPES:
            return
    except NOT_ARGUMENTS:
        pass
    check_float_tensor("static_scaled_fp8_quant", "x", x, min_dim=0)
    check_static_quant_args("static_scaled_fp8_quant", scale, fp8_dtype)


def _validate_dynamic_scaled_fp8_quant(
    x: Tensor,
    per_token: bool = False,
    scale_ub: Tensor | None = None,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
) -> None:
    try:
        if (
            x.dtype in FLOATING_DTYPES
            and x.dim()
            and type(per_token) is bool
            and (scale_ub is None or is_static_scale(scale_ub))
            and fp8_dtype in FP8_DTYPES
        ):
            return
    except NOT_ARGUMENTS:
        pass
    op = "dynamic_scaled_fp8_quant"
    check_float_tensor(op, "x", x)
    check_bool(op, "per_token", per_token)
    if scale_ub is not None:
        check_scale(scale_ub, "scale_ub", op)
    if type(fp8_dtype) is not torch.dtype or fp8_dtype not in FP8_DTYPES:
        check_fp8_dtype(fp8_dtype, op)


@register_op(validate=_validate_static_scaled_fp8_quant, differentiable=False)
def static_scaled_fp8_quant(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = torch.float8_e4m3fn
) -> Tensor:
    """Quantize to fp8 with a given scale: ``clamp(x / scale, -fp8_max, fp8_max)``.

    ``x`` is any floating-point tensor; ``scale`` a one-element float32 tensor (the per-tensor
    scale a checkpoint calibrated). The division and the clamp are float32, then one cast
    (round to nearest even) to ``fp8_dtype`` (``float8_e4m3fn``, max 448, or
    ``float8_e4m3fnuz``, max 240). Values beyond the range saturate at ``±fp8_max``, infinities
    included; NaN stays NaN. The output has ``x``'s shape.
    """
    return quantize(x, scale.reshape(()), fp8_dtype)


def _row_amax(x32: Tensor) -> Tensor:
    """``max |x|`` of each row as ``[..., 1]``; rows without elements have 0."""
    if x32.shape[-1] == 0:
        return x32.new_zeros((*x32.shape[:-1], 1))
    return x32.abs().amax(dim=-1, keepdim=True)


def _tensor_amax(x32: Tensor) -> Tensor:
    """``max |x|`` over the whole tensor as ``[1]``; an empty tensor has 0."""
    if x32.numel() == 0:
        return x32.new_zeros((1,))
    return x32.abs().amax().reshape(1)


@register_op(validate=_validate_dynamic_scaled_fp8_quant, differentiable=False)
def dynamic_scaled_fp8_quant(
    x: Tensor,
    per_token: bool = False,
    scale_ub: Tensor | None = None,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
) -> tuple[Tensor, Tensor]:
    """Quantize to fp8 with scales computed from ``x``: returns ``(quantized, scales)``.

    ``scale = amax / fp8_max`` where ``amax = max |x|`` over the whole tensor (``scales`` of
    shape ``[1]``) or, with ``per_token``, over each row of the last dimension (``scales`` of
    shape ``[*x.shape[:-1], 1]``, i.e. ``[tokens, 1]`` for 2-D ``x``). With ``per_token``, a
    ``scale_ub`` (one-element float32 tensor) bounds each row's amax first:
    ``min(amax, scale_ub) / fp8_max``; per tensor it is ignored. Scales are floored at
    ``1 / (fp8_max * 512)``, so zero or empty rows quantize to 0. All of this is float32; then
    ``quantized = static_scaled_fp8_quant(x, scale)`` with each row's scale (the same clamp and
    cast). A NaN (or an infinity) in a row makes that row's scale NaN (or infinite) and its
    values NaN (or 0); per tensor, the whole tensor's.
    """
    x32 = x.float()
    if per_token:
        amax = _row_amax(x32)
        if scale_ub is not None:
            amax = torch.minimum(amax, scale_ub.reshape(()))
    else:
        amax = _tensor_amax(x32)
    # A tensor divisor, not a Python number: CUDA divides by a number as a multiplication by its
    # reciprocal (not rounded once), which would make the scale depend on the device.
    limit = torch.full_like(amax, fp8_max(fp8_dtype))
    scales = (amax / limit).clamp(min=min_dynamic_scale(fp8_dtype))
    return quantize(x32, scales, fp8_dtype), scales


@static_scaled_fp8_quant.register_input_generator
def _static_scaled_fp8_quant_inputs(
    num_tokens: int,
    hidden_size: int,
    dtype: torch.dtype,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
    calibration: float = 1.0,
    device: torch.device | str | None = None,
) -> tuple[object, ...]:
    """``x`` of ``[num_tokens, hidden_size]`` and a scale calibrated on it (see
    :func:`~ir_op.ops._inputs.fp8_scale_for`): nothing saturates unless ``calibration < 1``."""
    x = activations(num_tokens, hidden_size, dtype, device)
    return x, fp8_scale_for(x, fp8_dtype, calibration), fp8_dtype


@dynamic_scaled_fp8_quant.register_input_generator
def _dynamic_scaled_fp8_quant_inputs(
    num_tokens: int,
    hidden_size: int,
    dtype: torch.dtype,
    per_token: bool = False,
    scale_ub: float | None = None,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
    device: torch.device | str | None = None,
) -> tuple[object, ...]:
    """``x`` of ``[num_tokens, hidden_size]``; ``scale_ub`` becomes a one-element tensor."""
    x = activations(num_tokens, hidden_size, dtype, device)
    ub = None if scale_ub is None else torch.tensor([scale_ub], dtype=torch.float32, device=device)
    return x, per_token, ub, fp8_dtype


allow_one_fp8_step(static_scaled_fp8_quant, dynamic_scaled_fp8_quant)
# Scales: amax is exact and the division rounds once; a kernel that multiplies by a rounded
# reciprocal instead is within 1.5 float32 ulps of it. 2**-22 allows 2 ulps, relative only,
# since scales are floored far above zero.
dynamic_scaled_fp8_quant.override_tolerance(torch.float32, atol=0.0, rtol=2.0**-22)
