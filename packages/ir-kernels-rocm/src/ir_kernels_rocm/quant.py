"""The ``rocm`` providers of ``static_scaled_fp8_quant`` and ``dynamic_scaled_fp8_quant``: the
shared kernels of :mod:`ir_triton.kernels.static_quant` and :mod:`ir_triton.kernels.quant`,
launched with
:data:`~ir_kernels_rocm.configs.CDNA_ROW_LAUNCH`.

Semantics are those of ``ir_op.ops.static_scaled_fp8_quant``: ``x / scale`` in float32
(``div_rn``, correctly rounded, as torch computes it), clamped to ``±fp8_max`` with NaN kept,
then one conversion to the fp8 format, rounding to nearest even. The output is a new contiguous
tensor of ``x``'s shape.

The fp8 formats are each generation's hardware one (:mod:`ir_kernels_rocm.fp8`): e4m3fnuz on MI300,
e4m3fn on MI350; the kernel stores through ``out_ptr.dtype.element_ty``, which the AMD backend
compiles to the GPU's conversion instruction. Under Triton's interpreter the kernel stores
float32 and torch rounds it (:mod:`ir_triton.fp8` says why).

Element-wise over ``[ROWS, BLOCK]`` tiles of the rows of ``x`` (any row stride), the tiles and
wavefronts of :data:`~ir_kernels_rocm.configs.CDNA_ROW_TABLE`; ``x`` is read once and streams
(``cache_modifier=".cg"``).

Dynamic quantization (per tensor, per token, ``scale_ub``) has the same semantics, formats and
launch choices; its scales are ``amax / fp8_max`` rounded once (``div_rn``), as native's. Both
bodies are shared with the other Triton kernel sets because nothing in them is vendor-specific
but the tiles, the wavefronts and the streaming hint, which :data:`CDNA_ROW_LAUNCH` gives.
"""

from ir_kernels_rocm._support import PROVIDER, supported, unsupported_reason
from ir_kernels_rocm.configs import CDNA_ROW_LAUNCH
from ir_kernels_rocm.fp8 import fp8_formats
from ir_triton.kernels.quant import DynamicFp8QuantProviders
from ir_triton.kernels.static_quant import StaticFp8QuantProviders

STATIC_QUANT = StaticFp8QuantProviders("ir_rocm", CDNA_ROW_LAUNCH, fp8_formats)
QUANT_LAUNCHER = STATIC_QUANT.launcher
STATIC_FP8_QUANT_OP = STATIC_QUANT.op
static_scaled_fp8_quant_rocm = STATIC_QUANT.provider
STATIC_QUANT.register(PROVIDER, supported, unsupported_reason)

DYNAMIC_QUANT = DynamicFp8QuantProviders("ir_rocm", CDNA_ROW_LAUNCH, fp8_formats)
dynamic_scaled_fp8_quant_rocm = DYNAMIC_QUANT.provider
DYNAMIC_QUANT.register(PROVIDER, supported, unsupported_reason)
