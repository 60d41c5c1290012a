"""Float64 references of the ops in :mod:`ir_op.ops`, written independently of the ops' code.

Each reference takes an op's arguments and returns its outputs in float64 (``None`` where the op
returns ``None``), rounded only where the op's semantics round: an intermediate rounded to the
input dtype, say, before fp8 quantization. Compare with :func:`rounded_like`, which rounds the
reference to the dtypes of the op's outputs. ``REFERENCES`` maps op names to them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

_FP8_MAX = {"float8_e4m3fn": 448.0, "float8_e4m3fnuz": 240.0}


def _fp8_limit(fp8_dtype: torch.dtype) -> float:
    return _FP8_MAX[str(fp8_dtype).removeprefix("torch.")]


def _halves(x: Tensor) -> tuple[Tensor, Tensor]:
    x64 = x.double()
    d = x.shape[-1] // 2
    return x64[..., :d], x64[..., d:]


# -- norms and activations ------------------------------------------------------------------


def ref_rms_norm(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    x64 = x.double()
    sample = x64 if variance_size is None else x64[..., :variance_size]
    out = x64 / torch.sqrt((sample * sample).mean(-1, keepdim=True) + epsilon)
    return out if weight is None else out * weight.double()


def ref_fused_add_rms_norm(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    total = x.double() + x_residual.double()
    return ref_rms_norm(total, weight, epsilon, variance_size), total


def _gelu(v: Tensor, approximate: str) -> Tensor:
    if approximate == "tanh":
        return 0.5 * v * (1 + torch.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
    return 0.5 * v * (1 + torch.erf(v / math.sqrt(2)))


def ref_silu_and_mul(x: Tensor) -> Tensor:
    gate, up = _halves(x)
    return gate / (1 + torch.exp(-gate)) * up


def ref_gelu_and_mul(x: Tensor, approximate: str = "none") -> Tensor:
    gate, up = _halves(x)
    return _gelu(gate, approximate) * up


def ref_gelu_and_mul_sparse(x: Tensor, std_multiplier: float, approximate: str = "none") -> Tensor:
    gate, up = _halves(x)
    mean = gate.mean(-1, keepdim=True)
    std = ((gate - mean) ** 2).mean(-1, keepdim=True).sqrt()
    return _gelu(torch.clamp(gate - mean - std * std_multiplier, min=0), approximate) * up


# -- rotary embedding -----------------------------------------------------------------------


def _ref_rotate(
    t: Tensor, positions: Tensor, head_size: int, cache: Tensor, is_neox_style: bool
) -> Tensor:
    """Each pair ``(a, b)`` as the complex ``a + ib``, multiplied by ``cos + i sin``."""
    width = cache.shape[1]
    half = width // 2
    num_heads = math.prod(t.shape[positions.dim() :]) // head_size
    heads = t.double().reshape(*positions.shape, num_heads, head_size)
    angles = cache.double()[positions.long()]
    turn = torch.complex(angles[..., :half], angles[..., half:]).unsqueeze(-2)
    part = heads[..., :width]
    if is_neox_style:
        z = torch.complex(part[..., :half], part[..., half:]) * turn
        rotated = torch.cat((z.real, z.imag), dim=-1)
    else:
        z = torch.complex(part[..., 0::2], part[..., 1::2]) * turn
        rotated = torch.stack((z.real, z.imag), dim=-1).flatten(-2)
    return torch.cat((rotated, heads[..., width:]), dim=-1).reshape(t.shape)


def ref_rotary_embedding(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox_style: bool,
    rotary_dim: int | None = None,
) -> tuple[Tensor, Tensor | None]:
    q = _ref_rotate(query, positions, head_size, cos_sin_cache, is_neox_style)
    if key is None:
        return q, None
    return q, _ref_rotate(key, positions, head_size, cos_sin_cache, is_neox_style)


# -- fp8 quantization -----------------------------------------------------------------------


def ref_static_scaled_fp8_quant(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = torch.float8_e4m3fn
) -> Tensor:
    limit = _fp8_limit(fp8_dtype)
    return torch.clamp(x.double() / scale.double(), -limit, limit)


def ref_dynamic_scaled_fp8_quant(
    x: Tensor,
    per_token: bool = False,
    scale_ub: Tensor | None = None,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
) -> tuple[Tensor, Tensor]:
    limit = _fp8_limit(fp8_dtype)
    x64 = x.double()
    if per_token:
        empty_rows = x.shape[-1] == 0
        amax = x64.new_zeros(*x.shape[:-1], 1) if empty_rows else x64.abs().amax(-1, keepdim=True)
        if scale_ub is not None:
            amax = torch.minimum(amax, scale_ub.double().reshape(()))
    else:
        amax = x64.abs().max().reshape(1) if x.numel() else x64.new_zeros(1)
    scales = torch.clamp(amax / limit, min=1 / (limit * 512))
    return torch.clamp(x64 / scales, -limit, limit), scales


# -- composites: the intermediate is rounded to the input dtype, as the components return it --


def ref_rms_norm_static_fp8_quant(
    x: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
) -> Tensor:
    normed = ref_rms_norm(x, weight, epsilon).to(x.dtype)
    return ref_static_scaled_fp8_quant(normed, scale, fp8_dtype)


def ref_fused_add_rms_norm_static_fp8_quant(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = torch.float8_e4m3fn,
) -> tuple[Tensor, Tensor]:
    normed, total = ref_fused_add_rms_norm(x, x_residual, weight, epsilon)
    return ref_static_scaled_fp8_quant(normed.to(x.dtype), scale, fp8_dtype), total


def ref_silu_and_mul_static_fp8_quant(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = torch.float8_e4m3fn
) -> Tensor:
    return ref_static_scaled_fp8_quant(ref_silu_and_mul(x).to(x.dtype), scale, fp8_dtype)


REFERENCES: dict[str, Callable[..., Any]] = {
    "rms_norm": ref_rms_norm,
    "fused_add_rms_norm": ref_fused_add_rms_norm,
    "silu_and_mul": ref_silu_and_mul,
    "gelu_and_mul": ref_gelu_and_mul,
    "gelu_and_mul_sparse": ref_gelu_and_mul_sparse,
    "rotary_embedding": ref_rotary_embedding,
    "static_scaled_fp8_quant": ref_static_scaled_fp8_quant,
    "dynamic_scaled_fp8_quant": ref_dynamic_scaled_fp8_quant,
    "rms_norm_static_fp8_quant": ref_rms_norm_static_fp8_quant,
    "fused_add_rms_norm_static_fp8_quant": ref_fused_add_rms_norm_static_fp8_quant,
    "silu_and_mul_static_fp8_quant": ref_silu_and_mul_static_fp8_quant,
}


def rounded_like(reference: Any, actual: Any) -> Any:
    """``reference`` (a tensor, ``None`` or a tuple of them) cast to the dtypes of ``actual``."""
    if isinstance(reference, tuple):
        return tuple(rounded_like(r, a) for r, a in zip(reference, actual, strict=True))
    if reference is None or not isinstance(actual, Tensor):
        return reference
    return reference.to(actual.dtype)
