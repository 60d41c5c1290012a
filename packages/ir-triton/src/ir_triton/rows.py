"""Argument checks for the ``supports_args`` of row-wise Triton kernels.

A row-wise kernel sees a tensor ``[..., cols]`` as ``rows`` rows of ``cols`` contiguous elements,
``row_stride`` elements apart: the last dimension must be contiguous and the leading dimensions
must collapse into one row index (true for contiguous tensors and for row slices of a wider
buffer, such as ``qkv[:, :hidden]``). Each check returns a Python ``bool`` for real tensors,
FakeTensors and symbolic shapes (comparisons of SymInts go through ``bool()``, which guards),
and none reads the number of rows, so the answer never depends on the batch size.

These sit on the dispatch hot path: each costs a few tenths of a microsecond.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import Tensor

from ir_op import platforms
from ir_op.platforms import Platform

FLOAT_DTYPES: frozenset[torch.dtype] = frozenset({torch.float16, torch.bfloat16, torch.float32})
"""The activation dtypes the row-wise kernels take (float64 goes to native, which computes it
in float64)."""

NOT_ARGUMENTS: tuple[type[Exception], ...] = (AttributeError, IndexError, TypeError)
"""What a ``supports_args`` predicate catches to answer ``False``: it must never raise, and
arguments that are not tensors (``None``, a list) or a 0-dim ``x`` raise these when read as
rows. A ``try`` costs nothing until it catches, so the predicates keep their speed."""


def _is_cpu(t: Tensor) -> bool:
    return t.is_cpu


def _is_cuda(t: Tensor) -> bool:
    return t.is_cuda


def _is_xpu(t: Tensor) -> bool:
    return t.is_xpu


# Plain functions, which Dynamo traces (it does not trace operator.attrgetter).
_DEVICE_FLAGS: dict[str, Callable[[Tensor], bool]] = {
    "cpu": _is_cpu,
    "cuda": _is_cuda,
    "xpu": _is_xpu,
}
_device_check: tuple[Platform, Callable[[Tensor], bool]] | None = None


def on_platform_device(t: Tensor) -> bool:
    """Whether ``t`` lives where the current platform's kernels read: its GPU, or the CPU while
    the platform is emulated (Triton's interpreter takes CPU tensors)."""
    cached = _device_check
    if cached is None or cached[0] is not platforms._current:  # resolved once per platform
        cached = _resolve_device_check()
    return cached[1](t)


def _resolve_device_check() -> tuple[Platform, Callable[[Tensor], bool]]:
    global _device_check
    platform = platforms.current_platform()
    device = platform.tensor_device
    flag = _DEVICE_FLAGS.get(device)
    if flag is None:
        raise ValueError(
            f"platform {platform.name!r} puts tensors on {device!r}; row-wise kernels know "
            f"{', '.join(sorted(_DEVICE_FLAGS))}"
        )
    _device_check = (platform, flag)
    return _device_check


def has_row_layout(t: Tensor) -> bool:
    """Whether ``t`` reads as rows: last dimension contiguous, leading dimensions collapsible."""
    ndim = t.dim()
    if ndim == 0:
        return False
    if t.is_contiguous():  # the common case, and the cheapest test (strides are slow to read)
        return True
    if t.stride(-1) != 1:
        return False
    if ndim <= 2:
        return True
    # Size-1 dimensions never step; each other leading dimension must step over whole blocks
    # of the next one.
    stepping = [i for i in range(ndim - 1) if t.shape[i] != 1]
    for outer, inner in itertools.pairwise(stepping):
        if t.stride(outer) != t.stride(inner) * t.shape[inner]:
            return False
    return True


def _row_step(t: Tensor) -> int | torch.SymInt:
    strides = t.stride()  # all at once: cheaper than t.stride(i)
    ndim = len(strides)
    if ndim == 2:
        return strides[0]
    shape = t.shape
    for i in range(ndim - 2, -1, -1):
        if shape[i] != 1:
            return strides[i]
    return shape[-1]  # one row (or a 1-D tensor)


def rows_are_disjoint(t: Tensor) -> bool:
    """Whether the rows of a row-layout ``t`` do not overlap, so a kernel may write them."""
    return bool(_row_step(t) >= t.shape[-1])


def row_stride(t: Tensor) -> int:
    """Elements between the starts of consecutive rows of a row-layout ``t``."""
    step = _row_step(t)
    return step if type(step) is int else int(step)


def num_rows(t: Tensor) -> int:
    """How many rows ``t`` has (0 for an empty tensor)."""
    cols = t.shape[-1]
    return t.numel() // cols if cols else 0


def is_row_vector(w: Tensor | None, cols: int, dtype: torch.dtype) -> bool:
    """Whether ``w`` is a contiguous ``[cols]`` vector of ``dtype`` (a norm weight)."""
    return (
        w is not None
        and w.dtype == dtype
        and w.dim() == 1
        and bool(w.numel() == cols)
        and w.is_contiguous()
    )
