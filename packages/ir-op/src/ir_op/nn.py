"""``torch.nn`` layers over the ops, for people who write their own models.

Each layer's ``forward`` is one call of its op, so it runs whichever provider the op's priority
picks (a kernel set in eager mode, the op's node under ``torch.compile``). Parameters are named
and shaped as the Hugging Face layers they stand in for (``weight`` of ``[hidden_size]``), so a
checkpoint loads unchanged.

Gradients: the ops' torch operators are inference operators. When autograd would record the call
(grad mode on and an input or the weight requiring grad), a layer runs the op's native function
instead, which is plain differentiable PyTorch and is the op's definition, so the result and its
gradients are the op's.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ir_op.ops import gelu_and_mul, rms_norm, silu_and_mul
from ir_op.ops.activation import GELU_APPROXIMATIONS

__all__ = ["GeluAndMul", "RMSNorm", "SiluAndMul"]


def needs_autograd(*tensors: Tensor | None) -> bool:
    """Whether autograd would record an op over ``tensors`` (grad mode on, one requires grad)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class RMSNorm(nn.Module):
    """RMS normalization of the last dimension through :func:`ir_op.ops.rms_norm`.

    ``out = x / sqrt(mean(x**2) + eps) * w`` with ``w = weight`` or, with ``weight_offset``,
    ``w = weight_offset + weight`` taken in float32 (Gemma's ``1 + w`` norm:
    ``RMSNorm(h, eps, weight_offset=1.0)`` holds ``weight`` initialized to zeros, as Gemma's
    checkpoints store it). The weight may have any floating dtype; the output has ``x``'s dtype.
    ``elementwise_affine=False`` keeps no weight (``weight`` is ``None``).
    """

    weight: nn.Parameter | None

    def __init__(
        self,
        hidden_size: int,
        eps: float = 1e-6,
        *,
        weight_offset: float = 0.0,
        elementwise_affine: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"RMSNorm: hidden_size must be an int > 0, got {hidden_size!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
            raise ValueError(f"RMSNorm: eps must be a number >= 0, got {eps!r}")
        if isinstance(weight_offset, bool) or not isinstance(weight_offset, (int, float)):
            raise TypeError(f"RMSNorm: weight_offset must be a number, got {weight_offset!r}")
        if weight_offset and not elementwise_affine:
            raise ValueError("RMSNorm: weight_offset needs a weight (elementwise_affine=True)")
        self.hidden_size = hidden_size
        self.eps = float(eps)
        self.weight_offset = float(weight_offset)
        if elementwise_affine:
            init = torch.zeros if weight_offset else torch.ones
            self.weight = nn.Parameter(init(hidden_size, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)

    def effective_weight(self) -> Tensor | None:
        """The weight the norm multiplies by: ``weight``, or ``weight_offset + weight`` in
        float32 (computed per call, so a weight loaded or changed later is the one used)."""
        if self.weight is None or not self.weight_offset:
            return self.weight
        return self.weight.float() + self.weight_offset

    def forward(self, x: Tensor) -> Tensor:
        weight = self.effective_weight()
        if needs_autograd(x, weight):
            out: Tensor = rms_norm.native_fn(x, weight, self.eps)
            return out
        result: Tensor = rms_norm(x, weight, self.eps)
        return result

    def extra_repr(self) -> str:
        offset = f", weight_offset={self.weight_offset}" if self.weight_offset else ""
        affine = "" if self.weight is not None else ", elementwise_affine=False"
        return f"{self.hidden_size}, eps={self.eps}{offset}{affine}"


class SiluAndMul(nn.Module):
    """SwiGLU's gate over ``x = [gate | up]``: ``silu(gate) * up`` (:func:`ir_op.ops.silu_and_mul`).

    ``x`` is ``[..., 2 * d]``; the output is ``[..., d]`` in ``x``'s dtype.
    """

    def forward(self, x: Tensor) -> Tensor:
        if needs_autograd(x):
            out: Tensor = silu_and_mul.native_fn(x)
            return out
        result: Tensor = silu_and_mul(x)
        return result


class GeluAndMul(nn.Module):
    """GeGLU's gate over ``x = [gate | up]``: ``gelu(gate) * up`` (:func:`ir_op.ops.gelu_and_mul`).

    ``approximate`` is ``"none"`` (exact, erf) or ``"tanh"`` (Hugging Face's
    ``gelu_pytorch_tanh``). ``x`` is ``[..., 2 * d]``; the output is ``[..., d]``.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in GELU_APPROXIMATIONS:
            raise ValueError(
                f"GeluAndMul: approximate={approximate!r} is not a GELU mode; valid: "
                f"{', '.join(GELU_APPROXIMATIONS)}"
            )
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        if needs_autograd(x):
            out: Tensor = gelu_and_mul.native_fn(x, self.approximate)
            return out
        result: Tensor = gelu_and_mul(x, self.approximate)
        return result

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"
