"""Building blocks for the ops' input generators."""

from __future__ import annotations

import torch
from torch import Tensor

from ir_op.ops.fp8 import check_fp8_dtype, fp8_max, min_dynamic_scale


def activations(
    num_tokens: int, width: int, dtype: torch.dtype, device: torch.device | str | None
) -> torch.Tensor:
    """Standard-normal activations of shape ``[num_tokens, width]`` (never all zeros)."""
    return torch.randn(num_tokens, width, dtype=torch.float32, device=device).to(dtype)


def norm_weight(
    hidden_size: int, dtype: torch.dtype, device: torch.device | str | None
) -> torch.Tensor:
    """A learned-looking norm weight: around 1, with spread."""
    w = 1.0 + 0.5 * torch.randn(hidden_size, dtype=torch.float32, device=device)
    return w.to(dtype)


def fp8_scale_for(values: Tensor, fp8_dtype: torch.dtype, calibration: float = 1.0) -> Tensor:
    """A static fp8 scale calibrated on ``values``, as a checkpoint would ship it.

    The one-element float32 scale maps ``calibration * max|values|`` to the fp8 maximum: at 1.0
    the whole range is used and nothing saturates; below 1 the largest values saturate. It is
    floored like a dynamic scale, so all-zero or empty ``values`` still give a usable scale.
    """
    if not calibration > 0:
        raise ValueError(f"calibration={calibration!r} must be > 0")
    check_fp8_dtype(fp8_dtype)
    v = values.float()
    amax = v.abs().amax() if v.numel() else v.new_zeros(())
    scale = amax * (calibration / fp8_max(fp8_dtype))  # float32 tensor math: no device sync
    return scale.clamp(min=min_dynamic_scale(fp8_dtype)).reshape(1)
