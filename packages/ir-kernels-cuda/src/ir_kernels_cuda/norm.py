"""The ``cuda`` providers of ``rms_norm`` and ``fused_add_rms_norm`` (in place, with its
out-of-place functional form): the shared Triton kernels of :mod:`ir_triton.kernels.norm`, launched
for NVIDIA GPUs with :data:`~ir_kernels_cuda.launch.CUDA_ROW_LAUNCH`.

Semantics, kernel shapes, launch plans and the arguments taken are described there. What is
NVIDIA's is all in the launch: the tiles and warps of ``NVIDIA_ROW_TABLE`` (rows up to 8192 wide
read once into registers; decode launches of up to 64 rows with more warps), ``evict_first``
loads of the activations and an ``evict_last`` load of the weight, and programmatic dependent
launch on sm_90 and later (:data:`~ir_kernels_cuda.launch.PDL`).

Eager calls launch through bound :class:`~ir_triton.KernelLauncher` plans (a few
microseconds of host time); while compiling or tracing the providers call the
``torch.ops.ir_cuda`` operators (``rms_norm``, ``fused_add_rms_norm``,
``fused_add_rms_norm_inplace``) instead, which ``torch.compile`` sees through.
"""

from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda.launch import CUDA_ROW_LAUNCH
from ir_triton.kernels.norm import RmsNormProviders

NORM = RmsNormProviders("ir_cuda", CUDA_ROW_LAUNCH)
rms_norm_cuda = NORM.rms_norm
fused_add_rms_norm_cuda = NORM.fused_add_rms_norm
fused_add_rms_norm_cuda_inplace = NORM.fused_add_rms_norm_inplace
RMS_NORM_OP = NORM.op
FUSED_ADD_RMS_NORM_OP = NORM.residual_op
FUSED_ADD_RMS_NORM_INPLACE_OP = NORM.inplace_op

NORM.register(PROVIDER, supported, unsupported_reason)
