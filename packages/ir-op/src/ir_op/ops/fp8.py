"""Facts about the fp8 formats the quantization ops produce, and checks of their arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ir_op.ops._checks import describe

if TYPE_CHECKING:
    from ir_op.op import IrOp

FP8_DTYPES: tuple[torch.dtype, ...] = tuple(
    d
    for d in (torch.float8_e4m3fn, getattr(torch, "float8_e4m3fnuz", None))
    if isinstance(d, torch.dtype)
)
"""The fp8 formats ops quantize to: OCP ``float8_e4m3fn`` and, where torch has it, AMD's
``float8_e4m3fnuz`` (MI300). Both have a 3-bit mantissa; their largest values are 448 and 240."""

DYNAMIC_SCALE_FLOOR_DIVISOR = 512.0
"""Dynamic scales are at least ``1 / (fp8_max * 512)``, so an all-zero row never divides by 0."""


def check_fp8_dtype(fp8_dtype: object, op: str = "fp8 quantization") -> torch.dtype:
    """Return ``fp8_dtype`` if ops can quantize to it, else raise ``ValueError``."""
    if not isinstance(fp8_dtype, torch.dtype) or fp8_dtype not in FP8_DTYPES:
        error = ValueError if isinstance(fp8_dtype, torch.dtype) else TypeError
        raise error(
            f"{op}: fp8_dtype={fp8_dtype!r} is not a supported fp8 format; valid: "
            f"{', '.join(str(d) for d in FP8_DTYPES)}"
        )
    return fp8_dtype


def fp8_max(fp8_dtype: torch.dtype) -> float:
    """The largest finite value of ``fp8_dtype``; quantized values saturate there."""
    return float(torch.finfo(fp8_dtype).max)


def min_dynamic_scale(fp8_dtype: torch.dtype) -> float:
    return 1.0 / (fp8_max(fp8_dtype) * DYNAMIC_SCALE_FLOOR_DIVISOR)


def one_ulp_tolerance(fp8_dtype: torch.dtype) -> tuple[float, float]:
    """``(atol, rtol)`` that admit a difference of one fp8 step anywhere in the range.

    A normal value ``v`` in ``[2**e, 2**(e+1))`` has steps of ``2**(e-3)``, at most ``v / 8``:
    ``rtol = eps = 2**-3``. Subnormals have a fixed step of ``smallest_normal * eps``: ``atol``.
    Fused kernels round intermediates (the normalized or activated row) at other points than
    the composition does, which moves a value across an fp8 rounding boundary now and then, by
    one step and never more, since an intermediate rounding is far finer than an fp8 step.
    """
    info = torch.finfo(fp8_dtype)
    return float(info.smallest_normal * info.eps), float(info.eps)


def allow_one_fp8_step(*ops: IrOp) -> None:
    """Give ``ops`` the one-step tolerance (:func:`one_ulp_tolerance`) for every fp8 format."""
    for op in ops:
        for fp8_dtype in FP8_DTYPES:
            atol, rtol = one_ulp_tolerance(fp8_dtype)
            op.override_tolerance(fp8_dtype, atol=atol, rtol=rtol)


def check_scale(scale: object, name: str, op: str) -> None:
    """Raise unless ``scale`` is a one-element float32 tensor (a static scale)."""
    if not (isinstance(scale, Tensor) and scale.dtype == torch.float32 and scale.numel() == 1):
        error = ValueError if isinstance(scale, Tensor) else TypeError
        raise error(f"{op}: {name} must be a one-element float32 tensor, got {describe(scale)}")
