"""The ``xpu`` providers of the composite ops ``rms_norm_static_fp8_quant``,
``fused_add_rms_norm_static_fp8_quant`` and ``silu_and_mul_static_fp8_quant``: one fused kernel
each, from :mod:`ir_triton.kernels.norm_quant` and
:mod:`ir_triton.kernels.activation_quant`, launched for
Intel Xe GPUs.

The semantics, the kernels and the arguments they take are described there. The bodies are
shared with the other Triton kernel sets because what is Intel's about them is all in the launch
(:data:`~ir_kernels_xpu.configs.XE_ROW_LAUNCH`: the Xe tiles of this package's norm and
activation kernels, 16-lane sub-groups, the large register file for wide tiles, no cache hints,
for the reason :mod:`ir_kernels_xpu.norm` gives) and in the fp8 format, ``float8_e4m3fn``, which
the store converts to (:data:`~ir_kernels_xpu.quant.FP8_FORMATS`).
"""

from ir_kernels_xpu._support import PROVIDER, supported, unsupported_reason
from ir_kernels_xpu.configs import XE_ROW_LAUNCH
from ir_kernels_xpu.quant import fp8_formats
from ir_triton.kernels.activation_quant import SiluAndMulQuantProviders
from ir_triton.kernels.norm_quant import RmsNormQuantProviders

NORM_QUANT = RmsNormQuantProviders("ir_xpu", XE_ROW_LAUNCH, fp8_formats)
SILU_AND_MUL_QUANT = SiluAndMulQuantProviders("ir_xpu", XE_ROW_LAUNCH, fp8_formats)
rms_norm_static_fp8_quant_xpu = NORM_QUANT.rms_norm_static_fp8_quant
fused_add_rms_norm_static_fp8_quant_xpu = NORM_QUANT.fused_add_rms_norm_static_fp8_quant
silu_and_mul_static_fp8_quant_xpu = SILU_AND_MUL_QUANT.provider

NORM_QUANT.register(PROVIDER, supported, unsupported_reason)
SILU_AND_MUL_QUANT.register(PROVIDER, supported, unsupported_reason)
