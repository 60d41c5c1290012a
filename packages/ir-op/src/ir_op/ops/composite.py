"""Composite ops: what fused kernels compute, defined as compositions of other ops.

Each is declared with ``register_op(composite_of=[...])`` (see :mod:`ir_op.composite`): its
native implementation composes its components' native ones, and its ``unfused`` provider runs
each component through that component's own dispatch. A fused provider must match the
composition, intermediate roundings included, within the op's tolerances.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ir_op.composite import Components
from ir_op.op import register_op
from ir_op.ops._checks import (
    FLOATING_DTYPES,
    INF,
    NOT_ARGUMENTS,
    check_gated_x,
    check_norm_args,
    check_residual,
)
from ir_op.ops._inputs import fp8_scale_for
from ir_op.ops.activation import silu_and_mul
from ir_op.ops.fp8 import FP8_DTYPES, allow_one_fp8_step
from ir_op.ops.norm import fused_add_rms_norm, rms_norm
from ir_op.ops.quant import check_static_quant_args, is_static_scale, static_scaled_fp8_quant


def _validate_rms_norm_static_fp8_quant(
    x: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
) -> None:
    try:
        hidden = x.shape[-1]
        if (
            x.dtype in FLOATING_DTYPES
            and (weight is None or (weight.dtype in FLOATING_DTYPES and weight.shape == (hidden,)))
            and type(epsilon) is float
            and 0.0 <= epsilon < INF
            and is_static_scale(scale)
            and fp8_dtype in FP8_DTYPES
        ):
            return
    except NOT_ARGUMENTS:
        pass
    check_norm_args("rms_norm_static_fp8_quant", x, weight, epsilon, None)
    check_static_quant_args("rms_norm_static_fp8_quant", scale, fp8_dtype)


def _validate_fused_add_rms_norm_static_fp8_quant(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
) -> None:
    try:
        shape = x.shape
        if (
            x.dtype in FLOATING_DTYPES
            and x_residual.dtype in FLOATING_DTYPES
            and x_residual.shape == shape
            and (weight is None or (weight.dtype in FLOATING_DTYPES and weight.shape == shape[-1:]))
            and type(epsilon) is float
            and 0.0 <= epsilon < INF
            and is_static_scale(scale)
            and fp8_dtype in FP8_DTYPES
            and shape
        ):
            return
    except NOT_ARGUMENTS:
        pass
    op = "fused_add_rms_norm_static_fp8_quant"
    check_norm_args(op, x, weight, epsilon, None)
    check_residual(op, x_residual, x)
    check_static_quant_args(op, scale, fp8_dtype)


def _validate_silu_and_mul_static_fp8_quant(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = torch.float8_e4m3fn
) -> None:
    try:
        if (
            x.dtype in FLOATING_DTYPES
            and not x.shape[-1] % 2
            and is_static_scale(scale)
            and fp8_dtype in FP8_DTYPES
        ):
            return
    except NOT_ARGUMENTS:
        pass
    check_gated_x("silu_and_mul_static_fp8_quant", x)
    check_static_quant_args("silu_and_mul_static_fp8_quant", scale, fp8_dtype)


# Not differentiable: the quantized output carries no gradient, and a gradient of only the
# residual output would be a silent half of one (see IrOp's gradient rule).
@register_op(
    composite_of=[rms_norm, static_scaled_fp8_quant],
    validate=_validate_rms_norm_static_fp8_quant,
    differentiable=False,
)
def rms_norm_static_fp8_quant(
    components: Components,
    x: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
) -> Tensor:
    """RMS normalization, then static fp8 quantization of the result.

    ``static_scaled_fp8_quant(rms_norm(x, weight, epsilon), scale, fp8_dtype)``: the
    normalized, weighted row is rounded to ``x.dtype`` (as ``rms_norm`` returns it, after the
    product in the weight's dtype), then
    divided by the one-element float32 ``scale`` in float32, clamped to the fp8 range and cast
    to ``fp8_dtype``. The output has ``x``'s shape and ``fp8_dtype``.
    """
    normed = components.rms_norm(x, weight, epsilon)
    quantized: Tensor = components.static_scaled_fp8_quant(normed, scale, fp8_dtype)
    return quantized


@register_op(
    composite_of=[fused_add_rms_norm, static_scaled_fp8_quant],
    validate=_validate_fused_add_rms_norm_static_fp8_quant,
    differentiable=False,
)
def fused_add_rms_norm_static_fp8_quant(
    components: Components,
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
) -> tuple[Tensor, Tensor]:
    """Residual add and RMS normalization, then static fp8 quantization: ``(q, residual_out)``.

    ``out, residual_out = fused_add_rms_norm(x, x_residual, weight, epsilon)`` (the float32 sum,
    normalized and rounded to ``x.dtype``; ``residual_out`` the sum rounded to ``x.dtype``),
    then ``q = static_scaled_fp8_quant(out, scale, fp8_dtype)``. ``q`` has ``fp8_dtype``,
    ``residual_out`` ``x.dtype``; both have ``x``'s shape.
    """
    out, residual_out = components.fused_add_rms_norm(x, x_residual, weight, epsilon)
    return components.static_scaled_fp8_quant(out, scale, fp8_dtype), residual_out


@register_op(
    composite_of=[silu_and_mul, static_scaled_fp8_quant],
    validate=_validate_silu_and_mul_static_fp8_quant,
    differentiable=False,
)
def silu_and_mul_static_fp8_quant(
    components: Components,
    x: Tensor,
    scale: Tensor,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
) -> Tensor:
    """SwiGLU's gate, then static fp8 quantization: ``quant(silu(gate) * up)``.

    ``static_scaled_fp8_quant(silu_and_mul(x), scale, fp8_dtype)``: ``x`` is ``[..., 2 * d]``
    (an odd last dimension is a ``ValueError``); the activated product is rounded to ``x.dtype``
    (as ``silu_and_mul`` returns it), then quantized. The output is ``[..., d]`` of
    ``fp8_dtype``.
    """
    activated = components.silu_and_mul(x)
    quantized: Tensor = components.static_scaled_fp8_quant(activated, scale, fp8_dtype)
    return quantized


@rms_norm_static_fp8_quant.register_input_generator
def _rms_norm_static_fp8_quant_inputs(
    num_tokens: int,
    hidden_size: int,
    dtype: torch.dtype,
    epsilon: float = 1e-6,
    with_weight: bool = True,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
    calibration: float = 1.0,
    device: torch.device | str | None = None,
) -> tuple[object, ...]:
    """``rms_norm``'s inputs and a scale calibrated on the normalized output."""
    x, weight, epsilon, _ = rms_norm.generate_inputs(
        num_tokens=num_tokens,
        hidden_size=hidden_size,
        dtype=dtype,
        epsilon=epsilon,
        with_weight=with_weight,
        device=device,
    )
    normed = rms_norm.native_fn(x, weight, epsilon)
    return x, weight, epsilon, fp8_scale_for(normed, fp8_dtype, calibration), fp8_dtype


@fused_add_rms_norm_static_fp8_quant.register_input_generator
def _fused_add_rms_norm_static_fp8_quant_inputs(
    num_tokens: int,
    hidden_size: int,
    dtype: torch.dtype,
    epsilon: float = 1e-6,
    with_weight: bool = True,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
    calibration: float = 1.0,
    device: torch.device | str | None = None,
) -> tuple[object, ...]:
    """``fused_add_rms_norm``'s inputs and a scale calibrated on the normalized output."""
    x, residual, weight, epsilon, _ = fused_add_rms_norm.generate_inputs(
        num_tokens=num_tokens,
        hidden_size=hidden_size,
        dtype=dtype,
        epsilon=epsilon,
        with_weight=with_weight,
        device=device,
    )
    normed, _ = fused_add_rms_norm.native_fn(x, residual, weight, epsilon)
    scale = fp8_scale_for(normed, fp8_dtype, calibration)
    return x, residual, weight, epsilon, scale, fp8_dtype


@silu_and_mul_static_fp8_quant.register_input_generator
def _silu_and_mul_static_fp8_quant_inputs(
    num_tokens: int,
    hidden_size: int,
    dtype: torch.dtype,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
    calibration: float = 1.0,
    device: torch.device | str | None = None,
) -> tuple[object, ...]:
    """``x`` of ``[num_tokens, 2 * hidden_size]`` and a scale calibrated on ``silu_and_mul(x)``."""
    (x,) = silu_and_mul.generate_inputs(
        num_tokens=num_tokens, hidden_size=hidden_size, dtype=dtype, device=device
    )
    scale = fp8_scale_for(silu_and_mul.native_fn(x), fp8_dtype, calibration)
    return x, scale, fp8_dtype


allow_one_fp8_step(
    rms_norm_static_fp8_quant, fused_add_rms_norm_static_fp8_quant, silu_and_mul_static_fp8_quant
)
