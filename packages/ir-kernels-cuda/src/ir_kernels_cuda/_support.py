"""Where the ``cuda`` provider can run: the CUDA platform (real, or emulated while Triton
interprets) with Triton importable."""

from __future__ import annotations

from ir_triton.kernel_set import TritonKernelSet

KERNEL_SET = TritonKernelSet(
    platform="cuda",
    provider="cuda",
    ops=(
        "rms_norm",
        "fused_add_rms_norm",
        "gelu_and_mul_sparse",
        "silu_and_mul",
        "gelu_and_mul",
        "rotary_embedding",
        "static_scaled_fp8_quant",
        "dynamic_scaled_fp8_quant",
        "rms_norm_static_fp8_quant",
        "fused_add_rms_norm_static_fp8_quant",
        "silu_and_mul_static_fp8_quant",
    ),
    triton_hint="it ships for Linux; pip install triton (ir-kernels-cuda requires it there)",
)
PROVIDER = KERNEL_SET.provider
PROVIDED_OPS = KERNEL_SET.ops
"""The ops this kernel set registers a provider for (checked against the registry by a test)."""

supported = KERNEL_SET.supported
unsupported_reason = KERNEL_SET.unsupported_reason
