"""What the fp8 kernels share: the one fp8 format they write and the step before the cast
(saturation, NaN kept).

The kernels write ``torch.float8_e4m3fn`` only (Triton's ``float8e4nv``, max 448), the format
NVIDIA GPUs convert to in hardware; ``float8_e4m3fnuz`` is AMD's (MI300), so arguments asking for
it go to the next provider.

:func:`clamp_for_fp8` comes in two bodies, chosen when this module is imported, which is also when
Triton decides whether kernels compile or are interpreted (:mod:`ir_triton.support`):

- compiled for the GPU, it clamps to ``±448`` keeping NaN, and the cast that follows is the
  hardware's round-to-nearest-even conversion;
- under Triton's interpreter it also rounds the value to the fp8 grid in float32 (exactly, to
  nearest even), because the interpreter's own float32 -> fp8 conversion is wrong near the
  subnormal range (off by a factor of two at ``2**-7``) and turns NaN into 384; it converts values
  already on the grid, and the NaN encoded here, exactly.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ir_triton import interpreting

FP8_DTYPE = torch.float8_e4m3fn
"""The fp8 format the kernels write."""
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)
"""448.0: quantized values saturate at ``±FP8_MAX``."""


if interpreting():

    @triton.jit  # type: ignore[untyped-decorator]
    def clamp_for_fp8(v, FP8_MAX: tl.constexpr):  # type: ignore[no-untyped-def]
        """``v`` (float32) clamped to ``±FP8_MAX`` and rounded to the e4m3fn grid (NaN kept, as
        a NaN that converts to fp8's NaN)."""
        tl.static_assert(FP8_MAX == 448.0, "the grid below is float8_e4m3fn's")
        magnitude = tl.minimum(tl.abs(v), FP8_MAX)
        # Normal range: round the float32 mantissa to 3 bits, to nearest even (a carry moves
        # into the exponent, as it should).
        bits = magnitude.to(tl.int32, bitcast=True)
        normal = (bits + 0x7FFFF + ((bits >> 20) & 1)) & 0x7FF00000
        # Below 2**-6: multiples of 2**-9, which float32 addition at 2**14 rounds to.
        subnormal = ((magnitude + 16384.0) - 16384.0).to(tl.int32, bitcast=True)
        rounded = tl.where(magnitude < 0.015625, subnormal, normal)
        # A NaN whose top mantissa bits are set: the interpreter converts it to fp8's NaN
        is_nan = v != v  # noqa: PLR0124
        rounded = tl.where(is_nan, 0x7FF00000, rounded).to(tl.float32, bitcast=True)
        return tl.where(v < 0.0, -rounded, rounded)

else:

    @triton.jit  # type: ignore[untyped-decorator]
    def clamp_for_fp8(v, FP8_MAX: tl.constexpr):  # type: ignore[no-untyped-def]
        """``v`` (float32) clamped to ``±FP8_MAX``, NaN kept; the cast to fp8 then rounds."""
        return tl.clamp(v, -FP8_MAX, FP8_MAX, propagate_nan=tl.PropagateNan.ALL)
