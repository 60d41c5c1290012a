"""Activation ops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ir_op.op import register_op
from ir_op.ops._checks import (
    FLOATING_DTYPES,
    NOT_ARGUMENTS,
    check_choice,
    check_finite_number,
    check_gated_x,
    compute_dtype,
)
from ir_op.ops._inputs import activations

GELU_APPROXIMATIONS = ("none", "tanh")


def gelu(v: Tensor, approximate: str) -> Tensor:
    """``F.gelu``, with ``gelu(+inf) = +inf`` on every device.

    torch's vectorized CPU kernel for exact GELU returns NaN for +inf (its scalar path and GPU
    kernels return +inf, as ``g * Phi(g)`` does); pinning it keeps the native function one
    function across devices, which kernels tested on CPU tensors (emulated platforms) rely on.
    """
    return torch.where(v == float("inf"), v, F.gelu(v, approximate=approximate))


def _validate_silu_and_mul(x: Tensor) -> None:
    try:
        if x.dtype in FLOATING_DTYPES and not x.shape[-1] % 2:
            return
    except NOT_ARGUMENTS:
        pass
    check_gated_x("silu_and_mul", x)


def _validate_gelu_and_mul(x: Tensor, approximate: str = "none") -> None:
    try:
        if (
            x.dtype in FLOATING_DTYPES
            and not x.shape[-1] % 2
            and approximate in GELU_APPROXIMATIONS
        ):
            return
    except NOT_ARGUMENTS:
        pass
    check_gated_x("gelu_and_mul", x)
    check_choice("gelu_and_mul", "approximate", approximate, GELU_APPROXIMATIONS)


def _validate_gelu_and_mul_sparse(
    x: Tensor, std_multiplier: float, approximate: str = "none"
) -> None:
    check_gated_x("gelu_and_mul_sparse", x)
    check_finite_number("gelu_and_mul_sparse", "std_multiplier", std_multiplier)
    check_choice("gelu_and_mul_sparse", "approximate", approximate, GELU_APPROXIMATIONS)


@register_op(validate=_validate_silu_and_mul)
def silu_and_mul(x: Tensor) -> Tensor:
    """SwiGLU's gate: ``silu(x[..., :d]) * x[..., d:]`` with ``d = x.shape[-1] // 2``.

    ``x`` is ``[..., 2 * d]`` (gate, then up); an odd last dimension is a ``ValueError``.
    ``silu(g) = g * sigmoid(g)`` and the product are float32 (float64 for float64 ``x``),
    rounded once to ``x.dtype``; the output is ``[..., d]``.
    """
    d = x.shape[-1] // 2
    compute = compute_dtype(x)
    gate = x[..., :d].to(compute)
    return (F.silu(gate) * x[..., d:].to(compute)).to(x.dtype)


@register_op(validate=_validate_gelu_and_mul)
def gelu_and_mul(x: Tensor, approximate: str = "none") -> Tensor:
    """GeGLU's gate: ``gelu(x[..., :d]) * x[..., d:]`` with ``d = x.shape[-1] // 2``.

    ``approximate`` is ``"none"`` (``g * Phi(g)``, the exact erf form) or ``"tanh"`` (the tanh
    approximation); anything else is a ``ValueError``, as is an odd last dimension. GELU and the
    product are float32 (float64 for float64 ``x``), rounded once to ``x.dtype``; the output is
    ``[..., d]``.
    """
    d = x.shape[-1] // 2
    compute = compute_dtype(x)
    gate = x[..., :d].to(compute)
    return (gelu(gate, approximate) * x[..., d:].to(compute)).to(x.dtype)


@register_op(validate=_validate_gelu_and_mul_sparse)
def gelu_and_mul_sparse(x: Tensor, std_multiplier: float, approximate: str = "none") -> Tensor:
    """Gemma3n's sparse GeGLU: ``gelu(relu(gate - (mean + std * std_multiplier))) * up``.

    ``x`` is ``[..., 2 * d]``, ``gate = x[..., :d]`` and ``up = x[..., d:]``. Each row's gate
    mean and population standard deviation set a threshold; gate values below it become zero
    (the target sparsity, ``std_multiplier = Normal(0, 1).icdf(sparsity)``). Statistics, GELU
    (``approximate`` is ``"none"`` or ``"tanh"``) and the product are float32 (float64 for
    float64 ``x``); the output, of shape ``[..., d]``, has ``x.dtype``. ``std_multiplier`` is a
    finite float.
    """
    d = x.shape[-1] // 2
    compute = compute_dtype(x)
    gate = x[..., :d].to(compute)
    up = x[..., d:].to(compute)
    mean = gate.mean(dim=-1, keepdim=True)
    std = (gate - mean).square().mean(dim=-1, keepdim=True).sqrt()
    sparse_gate = F.relu(gate - (mean + std * std_multiplier))
    return (gelu(sparse_gate, approximate) * up).to(x.dtype)


@gelu_and_mul_sparse.register_input_generator
def _gelu_and_mul_sparse_inputs(
    num_tokens: int,
    hidden_size: int,
    dtype: torch.dtype,
    std_multiplier: float = 1.6448536269514722,  # Normal(0, 1).icdf(0.95): 95% sparsity
    approximate: str = "tanh",
    device: torch.device | str | None = None,
) -> tuple[object, ...]:
    """``x`` of shape ``[num_tokens, 2 * hidden_size]``: the output is ``hidden_size`` wide."""
    return activations(num_tokens, 2 * hidden_size, dtype, device), std_multiplier, approximate


@silu_and_mul.register_input_generator
def _silu_and_mul_inputs(
    num_tokens: int,
    hidden_size: int,
    dtype: torch.dtype,
    device: torch.device | str | None = None,
) -> tuple[object, ...]:
    """``x`` of shape ``[num_tokens, 2 * hidden_size]``: the output is ``hidden_size`` wide."""
    return (activations(num_tokens, 2 * hidden_size, dtype, device),)


@gelu_and_mul.register_input_generator
def _gelu_and_mul_inputs(
    num_tokens: int,
    hidden_size: int,
    dtype: torch.dtype,
    approximate: str = "none",
    device: torch.device | str | None = None,
) -> tuple[object, ...]:
    """``x`` of shape ``[num_tokens, 2 * hidden_size]``: the output is ``hidden_size`` wide."""
    return activations(num_tokens, 2 * hidden_size, dtype, device), approximate


# Kernels commonly round the activation to the input dtype before the product: two roundings,
# up to about 1.5 ulps, which float16's default (about one ulp) does not cover; bfloat16's
# default allows two.
for _op in (silu_and_mul, gelu_and_mul):
    _op.override_tolerance(torch.float16, atol=2e-3, rtol=2e-3)
