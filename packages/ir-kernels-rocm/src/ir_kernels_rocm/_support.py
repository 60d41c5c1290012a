"""Where the ``rocm`` provider can run: the ROCm platform (real, or emulated while Triton
interprets) with Triton importable.

On ROCm, the ``triton`` module comes with torch: ROCm wheels of torch depend on
``pytorch-triton-rocm``, Triton built with its AMD backend at the version that torch's Inductor
was tested with.
"""

from __future__ import annotations

import importlib.util

PLATFORM = "rocm"
PROVIDER = "rocm"

PROVIDED_OPS = (
    "rms_norm",
    "fused_add_rms_norm",
    "silu_and_mul",
    "gelu_and_mul",
    "gelu_and_mul_sparse",
    "static_scaled_fp8_quant",
)
"""The ops this kernel set registers a ``rocm`` provider for (checked against the registry by a
test)."""


def triton_missing_reason() -> str | None:
    """Why Triton cannot be used here (not installed), or ``None``."""
    if importlib.util.find_spec("triton") is None:
        return (
            "triton is not installed (ROCm builds of torch bring it as pytorch-triton-rocm; "
            "install torch from the ROCm index)"
        )
    return None


def unsupported_reason() -> str | None:
    """Why the ``rocm`` provider cannot run on this machine, or ``None`` when it can."""
    missing = triton_missing_reason()
    if missing is not None:
        return missing
    from ir_op.triton import triton_unsupported_reason

    return triton_unsupported_reason(PLATFORM)


def supported() -> bool:
    return unsupported_reason() is None
