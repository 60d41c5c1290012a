"""How the shared kernels of ``ir_triton`` launch on NVIDIA GPUs: everything NVIDIA's about the
cuda kernel set is here; the other modules only instantiate and register the shared providers.

:data:`CUDA_ROW_LAUNCH` (norms, gated activations, fp8 quantization, the fused norm and
activation quantization):

- the tiles and warps of ``NVIDIA_ROW_TABLE`` (measured on H100 with
  ``benchmarks/tune_rows.py``, decode choices for launches of up to 64 rows included);
- ``evict_first`` for the activations, read once (they leave L2 to what is read again), and
  ``evict_last`` for the norm weight that every program reads;
- programmatic dependent launch on sm_90 and later (:data:`PDL`; ``IR_KERNELS_CUDA_PDL=0``
  turns it off);
- element-wise kernels in chunks of the largest power of two dividing the width, up to 2048
  (``divisor_tiles``: no masked lanes for widths such as 5120 or 14336, and several programs
  per wide row);
- exact division by the fp8 scales (``div_rn``, bit for bit native's). The reciprocal-multiply
  mode (``exact_division=False``) is at most one fp8 step away on rare elements; whether it is
  worth that on a GPU is for ``benchmarks/division_modes.py`` to show.

:data:`NVIDIA_ROTARY_LAUNCH`: 32-thread warps, each thread holding 8 values of each half of a
program's pairs (one 16-byte vector of bf16), at most 8 warps for the 2048 pairs of the largest
tile.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ir_triton import NVIDIA_ROW_TABLE, RowLaunch
from ir_triton.kernels.rotary import RotaryLaunch
from ir_triton.pdl import PdlSwitch

PDL_ENV_VAR = "IR_KERNELS_CUDA_PDL"
PDL = PdlSwitch(PDL_ENV_VAR)
"""Whether eager launches use PDL (decided on the first launch, then cached; ``PDL.set``)."""

CUDA_ROW_LAUNCH = RowLaunch(
    NVIDIA_ROW_TABLE,
    read_once="evict_first",
    reused="evict_last",
    pdl=PDL,
    exact_division=True,
    divisor_tiles=True,
)

NVIDIA_ROTARY_LAUNCH = RotaryLaunch(lanes_per_warp=32, elements_per_lane=8, max_warps=8)

FP8_FORMATS = frozenset({torch.float8_e4m3fn})
"""The one fp8 format the kernels write: ``float8_e4m3fn`` (Triton's ``float8e4nv``), which
NVIDIA GPUs convert to in hardware; ``float8_e4m3fnuz`` is AMD's (MI300) and goes to the next
provider."""


def fp8_formats(x: Tensor) -> frozenset[torch.dtype]:
    """The fp8 formats the kernels write for ``x``'s device: :data:`FP8_FORMATS` on every one."""
    return FP8_FORMATS
