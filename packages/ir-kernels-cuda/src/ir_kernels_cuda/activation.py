"""The ``cuda`` providers of the gated activations ``silu_and_mul``, ``gelu_and_mul`` and
``gelu_and_mul_sparse`` (Gemma3n's sparse GeGLU): the shared Triton kernels of
:mod:`ir_triton.kernels.activation`, launched for NVIDIA GPUs with
:data:`~ir_kernels_cuda.launch.CUDA_ROW_LAUNCH`.

Semantics, kernel shapes and the arguments taken are described there. NVIDIA's, all in the
launch: ``evict_first`` loads, PDL, element-wise chunks that divide the width, the sparse
GeGLU's decode warps. While compiling or tracing the providers call the ``torch.ops.ir_cuda``
operators of the same names.
"""

from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda.launch import CUDA_ROW_LAUNCH
from ir_triton.kernels.activation import GatedActivationProviders

ACTIVATION = GatedActivationProviders("ir_cuda", CUDA_ROW_LAUNCH)

ACTIVATION.register(PROVIDER, supported, unsupported_reason)
