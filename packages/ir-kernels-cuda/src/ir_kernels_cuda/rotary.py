"""The ``cuda`` provider of ``rotary_embedding`` (RoPE): the shared Triton kernel of
:mod:`ir_triton.kernels.rotary`, launched for NVIDIA GPUs, and its registration.

The semantics, the kernel and the arguments it takes are described there; NVIDIA's launch is
:data:`~ir_kernels_cuda.launch.NVIDIA_ROTARY_LAUNCH`.

Two providers share the kernel: the in-place one (``maybe_inplace``), which writes the rotated
elements back into ``query`` and ``key``, and the out-of-place one (the default overload), which
writes new contiguous tensors.
"""

from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda.launch import NVIDIA_ROTARY_LAUNCH
from ir_triton.kernels.rotary import RotaryProviders, rotary_embedding_supports_args

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
