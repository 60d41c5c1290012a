"""Activation ops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ir_op.op import register_op
from ir_op.ops._inputs import activations

GELU_APPROXIMATIONS = ("none", "tanh")


def check_gelu_approximate(approximate: str) -> None:
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(
            f"approximate={approximate!r} is not a GELU mode; "
            f"valid: {', '.join(GELU_APPROXIMATIONS)}"
        )


def gelu(v: Tensor, approximate: str) -> Tensor:
    """``F.gelu``, with ``gelu(+inf) = +inf`` on every device.

    torch's vectorized CPU kernel for exact GELU returns NaN for +inf (its scalar path and GPU
    kernels return +inf, as ``g * Phi(g)`` does); pinning it keeps the native function one
    function across devices, which kernels tested on CPU tensors (emulated platforms) rely on.
    """
    return torch.where(v == float("inf"), v, F.gelu(v, approximate=approximate))


def gate_width(x: Tensor) -> int:
    """Half the last dimension of a gated activation's input; odd widths are an error."""
    width = x.shape[-1]
    if width % 2:
        raise ValueError(
            f"a gated activation needs an even last dimension [gate | up], got {width}"
        )
    return width // 2


@register_op
def silu_and_mul(x: Tensor) -> Tensor:
    """SwiGLU's gate: ``silu(x[..., :d]) * x[..., d:]`` with ``d = x.shape[-1] // 2``.

    ``x`` is ``[..., 2 * d]`` (gate, then up); an odd last dimension is a ``ValueError``.
    ``silu(g) = g * sigmoid(g)`` and the product are float32, rounded once to ``x.dtype``; the
    output is ``[..., d]``.
    """
    d = gate_width(x)
    gate = x[..., :d].float()
    return (F.silu(gate) * x[..., d:].float()).to(x.dtype)


@register_op
def gelu_and_mul(x: Tensor, approximate: str = "none") -> Tensor:
    """GeGLU's gate: ``gelu(x[..., :d]) * x[..., d:]`` with ``d = x.shape[-1] // 2``.

    ``approximate`` is ``"none"`` (``g * Phi(g)``, the exact erf form) or ``"tanh"`` (the tanh
    approximation); anything else is a ``ValueError``, as is an odd last dimension. GELU and the
    product are float32, rounded once to ``x.dtype``; the output is ``[..., d]``.
    """
    check_gelu_approximate(approximate)
    d = gate_width(x)
    gate = x[..., :d].float()
    return (gelu(gate, approximate) * x[..., d:].float()).to(x.dtype)


@register_op
def gelu_and_mul_sparse(x: Tensor, std_multiplier: float, approximate: str = "none") -> Tensor:
    """Gemma3n's sparse GeGLU: ``gelu(relu(gate - (mean + std * std_multiplier))) * up``.

    ``x`` is ``[..., 2 * d]``, ``gate = x[..., :d]`` and ``up = x[..., d:]``. Each row's gate
    mean and population standard deviation set a threshold; gate values below it become zero
    (the target sparsity, ``std_multiplier = Normal(0, 1).icdf(sparsity)``). Statistics, GELU
    (``approximate`` is ``"none"`` or ``"tanh"``) and the product are float32; the output, of
    shape ``[..., d]``, has ``x.dtype``.
    """
    check_gelu_approximate(approximate)
    d = gate_width(x)
    gate = x[..., :d].float()
    up = x[..., d:].float()
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
