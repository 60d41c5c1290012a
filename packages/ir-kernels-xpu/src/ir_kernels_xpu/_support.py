"""Where the ``xpu`` provider can run: the XPU platform (real, or emulated while Triton
interprets) with Triton importable.

On Intel GPUs the ``triton`` module comes with torch: XPU wheels of torch depend on
``pytorch-triton-xpu``, Triton built with Intel's XPU backend at the version that torch's
Inductor was tested with.
"""

from __future__ import annotations

import importlib.util

PLATFORM = "xpu"
PROVIDER = "xpu"

PROVIDED_OPS = (
    "rms_norm",
    "fused_add_rms_norm",
    "silu_and_mul",
    "gelu_and_mul",
    "gelu_and_mul_sparse",
    "static_scaled_fp8_quant",
)
"""The ops this kernel set registers an ``xpu`` provider for (checked against the registry by a
test)."""


def triton_missing_reason() -> str | None:
    """Why Triton cannot be used here (not installed), or ``None``."""
    if importlib.util.find_spec("triton") is None:
        return (
            "triton is not installed (XPU builds of torch bring it as pytorch-triton-xpu; "
            "install torch from the XPU index)"
        )
    return None


def unsupported_reason() -> str | None:
    """Why the ``xpu`` provider cannot run on this machine, or ``None`` when it can."""
    missing = triton_missing_reason()
    if missing is not None:
        return missing
    from ir_op.triton import triton_unsupported_reason

    return triton_unsupported_reason(PLATFORM)


def supported() -> bool:
    return unsupported_reason() is None
