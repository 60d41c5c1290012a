"""Normalization ops."""

from __future__ import annotations

import torch
from torch import Tensor

from ir_op.op import register_op
from ir_op.ops._checks import (
    FLOATING_DTYPES,
    INF,
    NOT_ARGUMENTS,
    check_norm_args,
    check_residual,
    compute_dtype,
)
from ir_op.ops._inputs import activations, norm_weight


def _normalize(
    xc: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None,
    dtype: torch.dtype,
) -> Tensor:
    """RMS-normalize rows held in the compute dtype, apply the weight, round to ``dtype``.

    vLLM IR's rule: the normalized row is cast to the weight's dtype, multiplied there, and the
    product cast to ``dtype``. A weight of ``x``'s dtype thus means two roundings (the row, then
    the product); a float32 weight (Gemma's ``1 + w``) one, at the end.
    """
    sample = xc if variance_size is None else xc[..., :variance_size]
    rstd = torch.rsqrt(sample.square().mean(dim=-1, keepdim=True) + epsilon)
    out = xc * rstd
    if weight is not None:
        out = out.to(weight.dtype) * weight
    return out.to(dtype)


# The validators run on every call: the common valid case is accepted by the written-out test
# (each attribute read costs tens of nanoseconds); anything else goes to the complete check.


def _validate_rms_norm(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> None:
    try:
        hidden = x.shape[-1]
        if (
            x.dtype in FLOATING_DTYPES
            and (weight is None or (weight.dtype in FLOATING_DTYPES and weight.shape == (hidden,)))
            and type(epsilon) is float
            and 0.0 <= epsilon < INF
            and variance_size is None
        ):
            return
    except NOT_ARGUMENTS:
        pass
    check_norm_args("rms_norm", x, weight, epsilon, variance_size)


def _validate_fused_add_rms_norm(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
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
            and variance_size is None
            and shape
        ):
            return
    except NOT_ARGUMENTS:
        pass
    check_norm_args("fused_add_rms_norm", x, weight, epsilon, variance_size)
    check_residual("fused_add_rms_norm", x_residual, x)


@register_op(validate=_validate_rms_norm)
def rms_norm(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    """Root-mean-square normalization of the last dimension, optionally weighted.

    ``out = x / sqrt(mean(x[..., :variance_size]**2) + epsilon) * weight``

    ``x`` is a floating-point tensor with at least one dimension; ``weight`` is ``None`` or a
    ``[hidden]`` vector of any floating-point dtype; ``epsilon`` a finite float >= 0. The mean
    of squares and the scaling are float32 (float64 for float64 ``x``). With ``variance_size``
    the statistic comes from the first ``variance_size`` elements of each row and scales the
    whole row. As in vLLM IR, the normalized row is cast to the weight's dtype, multiplied by
    ``weight`` there, and the product returned in ``x.dtype`` (without a weight the normalized
    row is rounded to ``x.dtype`` once).
    """
    return _normalize(x.to(compute_dtype(x)), weight, epsilon, variance_size, x.dtype)


@register_op(allow_inplace=True, validate=_validate_fused_add_rms_norm)
def fused_add_rms_norm(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Residual add, then RMS normalization: returns ``(rms_norm(x + x_residual), x + x_residual)``.

    ``x_residual`` has ``x``'s shape (it is not broadcast). The sum is taken in float32
    (float64 for float64 ``x``); ``residual_out`` is that sum rounded to ``x.dtype``, and the
    normalization (as in ``rms_norm``, weight rule included) reads the unrounded sum. Both
    outputs have ``x.dtype``. With ``maybe_inplace`` a provider may write ``out`` into ``x``
    and ``residual_out`` into ``x_residual``.
    """
    compute = compute_dtype(x)
    total = x.to(compute) + x_residual.to(compute)
    return _normalize(total, weight, epsilon, variance_size, x.dtype), total.to(x.dtype)


@rms_norm.register_input_generator
def _rms_norm_inputs(
    num_tokens: int,
    hidden_size: int,
    dtype: torch.dtype,
    epsilon: float = 1e-6,
    with_weight: bool = True,
    variance_size: int | None = None,
    device: torch.device | str | None = None,
) -> tuple[object, ...]:
    x = activations(num_tokens, hidden_size, dtype, device)
    weight = norm_weight(hidden_size, dtype, device) if with_weight else None
    return x, weight, epsilon, variance_size


@fused_add_rms_norm.register_input_generator
def _fused_add_rms_norm_inputs(
    num_tokens: int,
    hidden_size: int,
    dtype: torch.dtype,
    epsilon: float = 1e-6,
    with_weight: bool = True,
    variance_size: int | None = None,
    device: torch.device | str | None = None,
) -> tuple[object, ...]:
    x = activations(num_tokens, hidden_size, dtype, device)
    residual = activations(num_tokens, hidden_size, dtype, device)
    weight = norm_weight(hidden_size, dtype, device) if with_weight else None
    return x, residual, weight, epsilon, variance_size


# Two roundings (the normalized row, then the weighted product) can each move one ulp when a
# provider sums the squares in another order; float16's default tolerance is about one ulp.
for _op in (rms_norm, fused_add_rms_norm):
    _op.override_tolerance(torch.float16, atol=4e-3, rtol=4e-3)
