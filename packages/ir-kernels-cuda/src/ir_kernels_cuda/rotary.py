"""The ``cuda`` provider of ``rotary_embedding`` (RoPE): the shared Triton kernel of
:mod:`ir_triton.kernels.rotary`, launched for NVIDIA GPUs, and its registration.

The semantics, the kernel and the arguments it takes are described there. NVIDIA's launch: warps
of 32 threads, each holding 8 values of each half of a program's pairs (one 16-byte vector of
bf16), at most 8 warps for the 2048 pairs of the largest tile.

Two providers share the kernel: the in-place one (``maybe_inplace``), which writes the rotated
elements back into ``query`` and ``key``, and the out-of-place one (the default overload), which
writes new contiguous tensors.
"""

from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_triton.kernels.rotary import RotaryLaunch, RotaryProviders, rotary_embedding_supports_args

NVIDIA_ROTARY_LAUNCH = RotaryLaunch(lanes_per_warp=32, elements_per_lane=8, max_warps=8)
"""8 values per thread and half; 8 warps for the largest tile (2048 pairs)."""

ROTARY = RotaryProviders("ir_cuda", NVIDIA_ROTARY_LAUNCH)
ROTARY_LAUNCHER = ROTARY.launcher
ROTARY_EMBEDDING_OP = ROTARY.op
ROTARY_EMBEDDING_INPLACE_OP = ROTARY.inplace_op
rotary_embedding_cuda = ROTARY.functional
rotary_embedding_cuda_inplace = ROTARY.inplace

ROTARY.register(PROVIDER, supported, unsupported_reason)

__all__ = [
    "ROTARY_EMBEDDING_INPLACE_OP",
    "ROTARY_EMBEDDING_OP",
    "ROTARY_LAUNCHER",
    "rotary_embedding_cuda",
    "rotary_embedding_cuda_inplace",
    "rotary_embedding_supports_args",
]
