"""The ``cuda`` providers of the composite ops ``rms_norm_static_fp8_quant``,
``fused_add_rms_norm_static_fp8_quant`` and ``silu_and_mul_static_fp8_quant``: one fused kernel
each, from :mod:`ir_triton.kernels.norm_quant` and :mod:`ir_triton.kernels.activation_quant`,
launched for NVIDIA GPUs with :data:`~ir_kernels_cuda.launch.CUDA_ROW_LAUNCH`.

Semantics, kernels and the arguments taken are described there. The unfused pairs read the
activations twice and write the intermediate in between; these read them once and write one fp8
byte per element (and the residual sum).
"""

from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda.launch import CUDA_ROW_LAUNCH, fp8_formats
from ir_triton.kernels.activation_quant import SiluAndMulQuantProviders
from ir_triton.kernels.norm_quant import RmsNormQuantProviders

NORM_QUANT = RmsNormQuantProviders("ir_cuda", CUDA_ROW_LAUNCH, fp8_formats)
SILU_AND_MUL_QUANT = SiluAndMulQuantProviders("ir_cuda", CUDA_ROW_LAUNCH, fp8_formats)

NORM_QUANT.register(PROVIDER, supported, unsupported_reason)
SILU_AND_MUL_QUANT.register(PROVIDER, supported, unsupported_reason)
