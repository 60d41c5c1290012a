"""Random test inputs with the layouts kernels get wrong: odd sizes, strided rows, empty."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def random_rows(
    leading: Sequence[int],
    width: int,
    dtype: torch.dtype,
    *,
    strided: bool = False,
    device: torch.device | str | None = None,
) -> Tensor:
    """Standard-normal ``[*leading, width]`` values (drawn in float32, then cast).

    With ``strided`` the tensor is a column slice of a wider buffer, so consecutive rows are
    not adjacent in memory (like a query sliced out of a fused QKV projection).
    """
    if not strided:
        return torch.randn(*leading, width, dtype=torch.float32, device=device).to(dtype)
    wide = torch.randn(*leading, width + 5, dtype=torch.float32, device=device).to(dtype)
    return wide[..., 3 : 3 + width]
