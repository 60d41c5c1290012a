"""Which fp8 formats the rocm quantization kernels write, by AMD GPU generation.

AMD GPUs convert float32 to fp8 in hardware in one format per generation:

- CDNA3 (MI300, ``gfx94x``): ``torch.float8_e4m3fnuz`` (max 240, one NaN, no negative zero),
  with ``v_cvt_pk_fp8_f32``;
- CDNA4 (MI350, ``gfx950``) and RDNA4 (``gfx12xx``): the OCP ``torch.float8_e4m3fn`` (max 448),
  with ``v_cvt_scalef32_pk_fp8_f32`` on gfx950.

The other generation's format is left to the native implementation: Triton emulates it in
software, which compiled for gfx942 (e4m3fn) and gfx950 (e4m3fnuz) takes 2.7 and 3 times the
vector instructions of the kernel with the hardware conversion (``tests/test_kernels_compile.py``
checks both). GPUs without fp8 conversions (MI200
``gfx90a``, RDNA3) take none.

While the platform is emulated (Triton's interpreter on CPU tensors) both formats are taken, so CI
covers the two generations' kernels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ir_op.platforms import current_platform

E4M3FN = torch.float8_e4m3fn
E4M3FNUZ = torch.float8_e4m3fnuz

FP8_FORMATS_BY_ARCH_PREFIX: tuple[tuple[str, frozenset[torch.dtype]], ...] = (
    ("gfx94", frozenset({E4M3FNUZ})),
    ("gfx95", frozenset({E4M3FN})),
    ("gfx12", frozenset({E4M3FN})),
)
"""``(gcnArchName prefix, formats)``, first match wins; other architectures: none."""

EMULATED_FP8_FORMATS = frozenset({E4M3FNUZ, E4M3FN})

_NONE: frozenset[torch.dtype] = frozenset()
_by_device: dict[int, frozenset[torch.dtype]] = {}


def fp8_formats_of_arch(arch: str) -> frozenset[torch.dtype]:
    """The formats for a ``gcnArchName`` such as ``"gfx942:sramecc+:xnack-"``."""
    for prefix, formats in FP8_FORMATS_BY_ARCH_PREFIX:
        if arch.startswith(prefix):
            return formats
    return _NONE


def _device_arch(index: int) -> str:
    return str(torch.cuda.get_device_properties(index).gcnArchName)


def fp8_formats(x: Tensor) -> frozenset[torch.dtype]:
    """The fp8 formats the rocm kernels write for activations on ``x``'s device.

    Real GPUs answer by architecture (looked up once per device); the emulated platform takes
    :data:`EMULATED_FP8_FORMATS`. Works on FakeTensors (their device is all it reads).
    """
    if current_platform().emulated:
        return EMULATED_FP8_FORMATS
    index = x.get_device()
    found = _by_device.get(index)
    if found is None:
        found = fp8_formats_of_arch(_device_arch(index)) if index >= 0 else _NONE
        _by_device[index] = found
    return found
