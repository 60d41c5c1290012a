"""The ``xpu`` providers of ``rms_norm`` and ``fused_add_rms_norm`` (in place, with its
out-of-place functional form): the shared Triton kernels of :mod:`ir_triton.kernels.norm`, launched
for Intel GPUs with :data:`~ir_kernels_xpu.configs.XE_ROW_LAUNCH`.

Semantics, kernel shapes and the arguments taken are described there. Tiles come from
:data:`~ir_kernels_xpu.configs.XE_ROW_TABLE`: rows up to 8192 wide stay in registers in one
block; wider rows loop, the second pass re-reading the row from L3.

Where these bodies equal the cuda kernel set's, and why they are not tuned differently: the
arithmetic is the op's, the same on every vendor, and the access pattern (each row contiguous,
one 16-byte vector per lane and load) is what Xe's load/store units want as well. What is tuned
for Xe is around the bodies: 16-lane sub-groups and the large register file for wide tiles
(:mod:`ir_kernels_xpu.configs`). NVIDIA's ``eviction_policy`` and AMD's streaming cache hints are
left out (the launch's ``stream`` is empty): Intel's backend documents no mapping of Triton's
cache hints onto Xe's L1/L3 controls, so a hint would be a guess.

Eager calls launch through :class:`~ir_triton.KernelLauncher`; while compiling or tracing the
providers call the ``torch.ops.ir_xpu`` operators (``rms_norm``, ``fused_add_rms_norm``,
``fused_add_rms_norm_inplace``) instead.
"""

from ir_kernels_xpu._support import PROVIDER, supported, unsupported_reason
from ir_kernels_xpu.configs import XE_ROW_LAUNCH
from ir_triton.kernels.norm import RmsNormProviders

NORM = RmsNormProviders("ir_xpu", XE_ROW_LAUNCH)
rms_norm_xpu = NORM.rms_norm
fused_add_rms_norm_xpu = NORM.fused_add_rms_norm
fused_add_rms_norm_xpu_inplace = NORM.fused_add_rms_norm_inplace
RMS_NORM_OP = NORM.op
FUSED_ADD_RMS_NORM_OP = NORM.residual_op
FUSED_ADD_RMS_NORM_INPLACE_OP = NORM.inplace_op

NORM.register(PROVIDER, supported, unsupported_reason)
