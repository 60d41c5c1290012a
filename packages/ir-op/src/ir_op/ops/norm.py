"""Normalization ops."""

from __future__ import annotations

import torch
from torch import Tensor

from ir_op.op import register_op
from ir_op.ops._inputs import activations, norm_weight


def _check_variance_size(x: Tensor, variance_size: int | None) -> None:
    if variance_size is not None and not 0 < variance_size <= x.shape[-1]:
        raise ValueError(
            f"variance_size={variance_size} must be in [1, {x.shape[-1]}] (the last dimension)"
        )


def _normalize(
    x32: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None,
    dtype: torch.dtype,
) -> Tensor:
    """RMS-normalize float32 rows, round to ``dtype``, then apply the weight in its dtype."""
    sample = x32 if variance_size is None else x32[..., :variance_size]
    rstd = torch.rsqrt(sample.square().mean(dim=-1, keepdim=True) + epsilon)
    out = (x32 * rstd).to(dtype)
    if weight is not None:
        out = (out.to(weight.dtype) * weight).to(dtype)
    return out


@register_op
def rms_norm(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    """Root-mean-square normalization of the last dimension, optionally weighted.

    ``out = x / sqrt(mean(x[..., :variance_size]**2) + epsilon) * weight``

    The mean of squares and the scaling are float32. With ``variance_size`` the statistic comes
    from the first ``variance_size`` elements of each row and scales the whole row. The
    normalized row is rounded to ``x.dtype``, multiplied by ``weight`` (shape ``[hidden]``) in
    the weight's dtype, and returned in ``x.dtype``.
    """
    _check_variance_size(x, variance_size)
    return _normalize(x.float(), weight, epsilon, variance_size, x.dtype)


@register_op(allow_inplace=True)
def fused_add_rms_norm(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Residual add, then RMS normalization: returns ``(rms_norm(x + x_residual), x + x_residual)``.

    The sum is taken in float32; ``residual_out`` is that sum rounded to ``x.dtype``, and the
    normalization (as in ``rms_norm``) reads the float32 sum, not the rounded one. Both outputs
    have ``x.dtype``. With ``maybe_inplace`` a provider may write ``out`` into ``x`` and
    ``residual_out`` into ``x_residual``.
    """
    _check_variance_size(x, variance_size)
    total = x.float() + x_residual.float()
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
