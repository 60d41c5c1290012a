"""Where the ``cuda`` provider can run: the CUDA platform (real, or emulated while Triton
interprets) with Triton importable."""

from __future__ import annotations

import importlib.util

PLATFORM = "cuda"
PROVIDER = "cuda"

PROVIDED_OPS = ("rms_norm", "fused_add_rms_norm", "gelu_and_mul_sparse")
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
