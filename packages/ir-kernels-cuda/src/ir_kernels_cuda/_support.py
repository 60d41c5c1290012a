"""Where the ``cuda`` provider can run: the CUDA platform (real, or emulated while Triton
interprets) with Triton importable."""

from __future__ import annotations

import importlib.util

PLATFORM = "cuda"
PROVIDER = "cuda"

PROVIDED_OPS = (
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
)
"""The ops this kernel set registers a provider for (checked against the registry by a test)."""


def triton_missing_reason() -> str | None:
    """Why Triton cannot be used here (not installed), or ``None``."""
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (it ships for Linux; pip install 'ir-op[triton]')"
    return None


def unsupported_reason() -> str | None:
    """Why the ``cuda`` provider cannot run on this machine, or ``None`` when it can."""
    missing = triton_missing_reason()
    if missing is not None:
        return missing
    from ir_op.triton import triton_unsupported_reason

    return triton_unsupported_reason(PLATFORM)


def supported() -> bool:
    return unsupported_reason() is None
