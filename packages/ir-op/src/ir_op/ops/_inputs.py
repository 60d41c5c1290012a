"""Building blocks for the ops' input generators."""

from __future__ import annotations

import torch


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
