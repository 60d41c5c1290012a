"""The ``rocm`` providers of the composite ops ``rms_norm_static_fp8_quant``,
``fused_add_rms_norm_static_fp8_quant`` and ``silu_and_mul_static_fp8_quant``: one fused kernel
each, from :mod:`ir_triton.kernels.norm_quant` and
:mod:`ir_triton.kernels.activation_quant`, launched for
AMD Instinct GPUs.

The semantics, the kernels and the arguments they take are described there. The bodies are
shared with the other Triton kernel sets because what is AMD's about them is all in the launch
(:data:`~ir_kernels_rocm.configs.CDNA_ROW_LAUNCH`: the CDNA tiles and wavefronts of this
package's norm and activation kernels, streaming ``nt`` loads for the last read of the
activations) and in the fp8 format, which the output's dtype selects and the store converts to
with the GPU's instruction: ``float8_e4m3fnuz`` on MI300, ``float8_e4m3fn`` on MI350
(:mod:`ir_kernels_rocm.fp8`).
"""

from ir_kernels_rocm._support import PROVIDER, supported, unsupported_reason
from ir_kernels_rocm.configs import CDNA_ROW_LAUNCH
from ir_kernels_rocm.fp8 import fp8_formats
from ir_triton.kernels.activation_quant import SiluAndMulQuantProviders
from ir_triton.kernels.norm_quant import RmsNormQuantProviders

NORM_QUANT = RmsNormQuantProviders("ir_rocm", CDNA_ROW_LAUNCH, fp8_formats)
SILU_AND_MUL_QUANT = SiluAndMulQuantProviders("ir_rocm", CDNA_ROW_LAUNCH, fp8_formats)
rms_norm_static_fp8_quant_rocm = NORM_QUANT.rms_norm_static_fp8_quant
fused_add_rms_norm_static_fp8_quant_rocm = NORM_QUANT.fused_add_rms_norm_static_fp8_quant
silu_and_mul_static_fp8_quant_rocm = SILU_AND_MUL_QUANT.provider

NORM_QUANT.register(PROVIDER, supported, unsupported_reason)
SILU_AND_MUL_QUANT.register(PROVIDER, supported, unsupported_reason)
