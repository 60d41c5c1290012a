"""The ``xpu`` providers of ``static_scaled_fp8_quant`` and ``dynamic_scaled_fp8_quant``: the
shared kernels of :mod:`ir_triton.kernels.static_quant` and :mod:`ir_triton.kernels.quant`,
launched with
:data:`~ir_kernels_xpu.configs.XE_ROW_LAUNCH`.

Semantics are those of ``ir_op.ops.static_scaled_fp8_quant``: ``x / scale`` in float32, divided
with ``tl.math.div_rn`` (correctly rounded, as torch divides: Intel's backend may otherwise
lower ``/`` to a faster, approximate division on some drivers), clamped to ``±fp8_max`` with NaN
kept (``where`` on comparisons, which NaN fails), then one conversion to ``float8_e4m3fn``,
rounding to nearest even. The output is a new contiguous tensor of ``x``'s shape.

Only ``float8_e4m3fn`` is taken (:data:`FP8_FORMATS`): it is the format Intel's backend converts
to (``fp8e4nv``); ``float8_e4m3fnuz`` is AMD's and is not among the backend's fp8 types. (The
ops define no e5m2 quantization, so there is none to provide.) Under Triton's interpreter the
kernel stores float32 and torch rounds it (:mod:`ir_triton.fp8` says why).

Element-wise over ``[ROWS, BLOCK]`` tiles of the rows of ``x`` (any row stride), with the
sub-groups and tiles of :data:`~ir_kernels_xpu.configs.XE_ROW_TABLE`.

Dynamic quantization (per tensor, per token, ``scale_ub``) has the same semantics and format;
its scales are ``amax / fp8_max`` rounded once (``div_rn``), as native's. Both bodies are shared
with the other Triton kernel sets because nothing in them is vendor-specific but the tiles and
the launch options (sub-group size, register-file mode), which :data:`XE_ROW_LAUNCH` gives.
"""

import torch
from torch import Tensor

from ir_kernels_xpu._support import PROVIDER, supported, unsupported_reason
from ir_kernels_xpu.configs import XE_ROW_LAUNCH
from ir_triton.kernels.quant import DynamicFp8QuantProviders
from ir_triton.kernels.static_quant import StaticFp8QuantProviders

FP8_FORMATS: frozenset[torch.dtype] = frozenset({torch.float8_e4m3fn})
"""The fp8 formats the kernel writes, on every Intel GPU and on the emulated platform."""


def fp8_formats(x: Tensor) -> frozenset[torch.dtype]:
    """The fp8 formats the xpu kernel writes for activations on ``x``'s device."""
    return FP8_FORMATS


STATIC_QUANT = StaticFp8QuantProviders("ir_xpu", XE_ROW_LAUNCH, fp8_formats)
QUANT_LAUNCHER = STATIC_QUANT.launcher
STATIC_FP8_QUANT_OP = STATIC_QUANT.op
static_scaled_fp8_quant_xpu = STATIC_QUANT.provider
STATIC_QUANT.register(PROVIDER, supported, unsupported_reason)

DYNAMIC_QUANT = DynamicFp8QuantProviders("ir_xpu", XE_ROW_LAUNCH, fp8_formats)
dynamic_scaled_fp8_quant_xpu = DYNAMIC_QUANT.provider
DYNAMIC_QUANT.register(PROVIDER, supported, unsupported_reason)
