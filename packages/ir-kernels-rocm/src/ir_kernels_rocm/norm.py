"""The ``rocm`` providers of ``rms_norm`` and ``fused_add_rms_norm`` (in place, with its
out-of-place functional form): the shared Triton kernels of :mod:`ir_triton.kernels.norm`, launched
for AMD Instinct GPUs with :data:`~ir_kernels_rocm.configs.CDNA_ROW_LAUNCH`.

Semantics, kernel shapes and the arguments taken are described there. The bodies are shared with
the xpu kernel set; what is AMD's is all in the launch:

- Tiles and wavefronts come from :data:`~ir_kernels_rocm.configs.CDNA_ROW_TABLE`: rows up to
  16384 wide stay in registers in one block; wider rows loop, the second pass re-reading the row
  from L2 or the Infinity Cache.
- Read-once activations are loaded with ``cache_modifier=".cg"``, which the AMD backend emits as
  a streaming (``nt``) load on gfx942 and gfx950, keeping them from displacing the weight and
  the looped kernel's rows in L2. NVIDIA's ``eviction_policy`` hints are not used: the AMD
  backend drops them (the compiled code is identical with and without). The looped kernel's
  first pass reads without the hint, so its second pass finds the row in L2.
- The rest is the same as in the cuda kernel set's bodies because it is the op's: float32
  statistics and the op's two roundings. Offsets are 64-bit per row as there; for one-row
  programs (rows of 4096 or more) the AMD compiler still turns every access into a buffer load
  or store with a scalar base, and packed tiles of short rows are too small for that to matter.

Eager calls launch through :class:`~ir_triton.KernelLauncher`; while compiling or tracing the
providers call the ``torch.ops.ir_rocm`` operators (``rms_norm``, ``fused_add_rms_norm``,
``fused_add_rms_norm_inplace``) instead.
"""

from ir_kernels_rocm._support import PROVIDER, supported, unsupported_reason
from ir_kernels_rocm.configs import CDNA_ROW_LAUNCH
from ir_triton.kernels.norm import RmsNormProviders

NORM = RmsNormProviders("ir_rocm", CDNA_ROW_LAUNCH)
rms_norm_rocm = NORM.rms_norm
fused_add_rms_norm_rocm = NORM.fused_add_rms_norm
fused_add_rms_norm_rocm_inplace = NORM.fused_add_rms_norm_inplace
RMS_NORM_OP = NORM.op
FUSED_ADD_RMS_NORM_OP = NORM.residual_op
FUSED_ADD_RMS_NORM_INPLACE_OP = NORM.inplace_op

NORM.register(PROVIDER, supported, unsupported_reason)
