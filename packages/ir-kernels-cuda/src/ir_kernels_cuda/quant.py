"""The ``cuda`` providers of ``static_scaled_fp8_quant`` and ``dynamic_scaled_fp8_quant``: the
shared kernels of :mod:`ir_triton.kernels.static_quant` and :mod:`ir_triton.kernels.quant`,
launched for NVIDIA GPUs with :data:`~ir_kernels_cuda.launch.CUDA_ROW_LAUNCH`.

Semantics, kernels and the arguments taken are described there; the one fp8 format is
``float8_e4m3fn`` (:func:`~ir_kernels_cuda.launch.fp8_formats`), converted by the GPU's
instruction on store (under Triton's interpreter torch rounds: :mod:`ir_triton.fp8`). Values
are divided by the scale as the launch's ``exact_division`` says (``div_rn`` by default).
"""

from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda.launch import CUDA_ROW_LAUNCH, fp8_formats
from ir_triton.kernels.quant import DynamicFp8QuantProviders
from ir_triton.kernels.static_quant import StaticFp8QuantProviders

STATIC_QUANT = StaticFp8QuantProviders("ir_cuda", CUDA_ROW_LAUNCH, fp8_formats)
STATIC_QUANT.register(PROVIDER, supported, unsupported_reason)

DYNAMIC_QUANT = DynamicFp8QuantProviders("ir_cuda", CUDA_ROW_LAUNCH, fp8_formats)
DYNAMIC_QUANT.register(PROVIDER, supported, unsupported_reason)
