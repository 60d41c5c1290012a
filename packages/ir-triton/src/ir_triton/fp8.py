"""Where fp8-producing Triton kernels store their results, compiled or interpreted.

A quantization kernel computes the clamped float32 value and stores it through
``value.to(out_ptr.dtype.element_ty)``: compiled, that is the GPU's float32 -> fp8 conversion
(round to nearest even). Triton's interpreter (3.6) cannot stand in for it: its conversion
rounds half away from zero, carries a rounded-up mantissa into the wrong exponent, turns NaN
into a finite value, and has no ``float8e4b8`` (``torch.float8_e4m3fnuz``) type at all. So under
the interpreter the kernel stores float32 into a scratch tensor (the conversion in the kernel is
then the identity) and torch rounds it into the fp8 output afterwards, which is exactly the
rounding of the GPU conversion and of the native ops. Only the conversion instruction differs
from a compiled run; the kernel's indexing, masking, scaling and clamping are what it tests.

Usage in a launch function::

    target = fp8_store_target(out)
    kernel[grid](x, ..., target, ...)
    fp8_store_finish(out, target)
"""

from __future__ import annotations

import torch
from torch import Tensor

from ir_triton.kernel_set import interpreting


def fp8_store_target(out: Tensor) -> Tensor:
    """The tensor a kernel should store into for the fp8 tensor ``out``: ``out`` itself when
    Triton compiles, a float32 tensor of ``out``'s shape and strides while it interprets."""
    if not interpreting():
        return out
    return torch.empty_like(out, dtype=torch.float32)


def fp8_store_finish(out: Tensor, target: Tensor) -> None:
    """Round ``target`` into ``out`` when :func:`fp8_store_target` gave a float32 stand-in."""
    if target is not out:
        out.copy_(target)
