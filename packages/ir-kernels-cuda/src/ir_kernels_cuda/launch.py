"""How the shared row-wise kernels of ``ir_triton`` launch on NVIDIA GPUs.

:data:`CUDA_ROW_LAUNCH`: the tiles and warps of ``NVIDIA_ROW_TABLE`` (measured on H100, decode
choices included), ``evict_first`` for activations read once (they leave L2 to what is read
again) and ``evict_last`` for the weight every program reads, and programmatic dependent launch
where the GPU and Triton have it (:mod:`ir_kernels_cuda.pdl`).
"""

from __future__ import annotations

from ir_kernels_cuda.pdl import pdl_enabled
from ir_triton import NVIDIA_ROW_TABLE, RowLaunch

CUDA_ROW_LAUNCH = RowLaunch(
    NVIDIA_ROW_TABLE, read_once="evict_first", reused="evict_last", pdl=pdl_enabled
)
