"""The ``rocm`` provider of ``rotary_embedding`` (RoPE): the shared Triton kernel of
:mod:`ir_triton.kernels.rotary`, launched for AMD Instinct GPUs, and its registration.

The semantics, the kernel and the arguments it takes are described there; the body is the same
as on NVIDIA because it is a gather of one cache row per token and a stream over query and key,
with no reduction and no fp8 conversion. What differs is the launch: Triton's ``num_warps``
counts 64-lane wavefronts on AMD, so a program of the largest tile (2048 pairs) gets 4
wavefronts, and each lane still holds 8 values of each half (one 16-byte vector of bf16, the
``dwordx4`` loads that ``tests/test_kernels_compile.py`` checks for).

Two providers share the kernel: the in-place one (``maybe_inplace``), which writes the rotated
elements back into ``query`` and ``key``, and the out-of-place one (the default overload), which
writes new contiguous tensors.
"""

from ir_kernels_rocm._support import PROVIDER, supported, unsupported_reason
from ir_triton.kernels.rotary import RotaryLaunch, RotaryProviders

CDNA_ROTARY_LAUNCH = RotaryLaunch(lanes_per_warp=64, elements_per_lane=8, max_warps=4)
"""64-lane wavefronts, 8 values per lane and half; 4 wavefronts for the largest tile."""

ROTARY = RotaryProviders("ir_rocm", CDNA_ROTARY_LAUNCH)
ROTARY_LAUNCHER = ROTARY.launcher
rotary_embedding_rocm = ROTARY.functional
rotary_embedding_rocm_inplace = ROTARY.inplace

ROTARY.register(PROVIDER, supported, unsupported_reason)
