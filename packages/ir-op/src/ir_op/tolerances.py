"""Default tolerances for comparing a provider's output with the op's native output.

The numbers are the usual ones for each format's precision; an op whose math is looser (a
reduction, an fp8 rounding step) widens them with ``op.override_tolerance``.
"""

from __future__ import annotations

from typing import TypedDict

import torch


class Tolerance(TypedDict):
    atol: float
    rtol: float


DEFAULT_TOLERANCES: dict[torch.dtype, Tolerance] = {
    # 52-bit mantissa
    torch.float64: {"atol": 1e-8, "rtol": 1e-8},
    # 23-bit mantissa; the PyTorch test-suite defaults
    torch.float32: {"atol": 1e-5, "rtol": 1.3e-6},
    # 10-bit mantissa, one ulp is about 1e-3 relative
    torch.float16: {"atol": 1e-3, "rtol": 1e-3},
    # 7-bit mantissa, two ulps are about 1.6e-2 relative
    torch.bfloat16: {"atol": 1e-3, "rtol": 1.6e-2},
    # 3-bit mantissa
    torch.float8_e4m3fn: {"atol": 1e-1, "rtol": 1e-1},
    # 2-bit mantissa
    torch.float8_e5m2: {"atol": 2e-1, "rtol": 2e-1},
    # quantized integers: an off-by-one from rounding is expected, relative error is meaningless
    torch.int8: {"atol": 1, "rtol": 0},
}

# AMD's fp8 variants (MI300) have the same mantissas as the OCP formats above.
for _name, _like in (
    ("float8_e4m3fnuz", torch.float8_e4m3fn),
    ("float8_e5m2fnuz", torch.float8_e5m2),
):
    _dtype = getattr(torch, _name, None)
    if isinstance(_dtype, torch.dtype):
        DEFAULT_TOLERANCES[_dtype] = DEFAULT_TOLERANCES[_like]
