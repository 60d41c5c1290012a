"""Where the ``rocm`` provider can run: the ROCm platform (real, or emulated while Triton
interprets) with Triton importable.

On ROCm, the ``triton`` module comes with torch: ROCm wheels of torch depend on
``pytorch-triton-rocm``, Triton built with its AMD backend at the version that torch's Inductor
was tested with.
"""

from __future__ import annotations

from ir_triton.kernel_set import TritonKernelSet

KERNEL_SET = TritonKernelSet(
    platform="rocm",
    provider="rocm",
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
        "ROCm builds of torch bring it as pytorch-triton-rocm; install torch from the ROCm index"
    ),
)
PROVIDER = KERNEL_SET.provider
PROVIDED_OPS = KERNEL_SET.ops
"""The ops this kernel set registers a ``rocm`` provider for (checked against the registry by a
test)."""

supported = KERNEL_SET.supported
unsupported_reason = KERNEL_SET.unsupported_reason
