"""Where the ``xpu`` provider can run: the XPU platform (real, or emulated while Triton
interprets) with Triton importable.

On Intel GPUs the ``triton`` module comes with torch: XPU wheels of torch depend on
``pytorch-triton-xpu``, Triton built with Intel's XPU backend at the version that torch's
Inductor was tested with.
"""

from __future__ import annotations

from ir_triton.kernel_set import TritonKernelSet

KERNEL_SET = TritonKernelSet(
    platform="xpu",
    provider="xpu",
    ops=(
        "rms_norm",
        "fused_add_rms_norm",
        "silu_and_mul",
        "gelu_and_mul",
        "gelu_and_mul_sparse",
        "rotary_embedding",
        "static_scaled_fp8_quant",
        "dynamic_scaled_fp8_quant",
        "rms_norm_static_fp8_quant",
        "fused_add_rms_norm_static_fp8_quant",
        "silu_and_mul_static_fp8_quant",
    ),
    triton_hint=(
        "XPU builds of torch bring it as pytorch-triton-xpu; install torch from the XPU index"
    ),
)
PROVIDER = KERNEL_SET.provider
PROVIDED_OPS = KERNEL_SET.ops
"""The ops this kernel set registers an ``xpu`` provider for (checked against the registry by a
test)."""

supported = KERNEL_SET.supported
unsupported_reason = KERNEL_SET.unsupported_reason
