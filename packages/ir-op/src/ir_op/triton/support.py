"""The interpreter switch and the support check of Triton kernel sets.

Triton decides when a kernel is *defined* (``@triton.jit`` runs) whether it compiles for the GPU
or runs in its interpreter: ``TRITON_INTERPRET=1`` gives an interpreted function that takes CPU
tensors. The ir pytest plugin sets it, before any kernel set loads, for a platform that is
emulated (forced with ``IR_OP_PLATFORM`` on a machine without its hardware), which is how CI runs
the GPU kernel sets.
"""

from __future__ import annotations

import os

_TRUE = ("1", "true", "yes", "on")


def interpreting() -> bool:
    """Whether Triton kernels defined now run in Triton's interpreter (``TRITON_INTERPRET``)."""
    try:
        from triton import knobs
    except ImportError:  # Triton before 3.4 kept its switches in the environment only
        return os.environ.get("TRITON_INTERPRET", "").strip().lower() in _TRUE
    return bool(knobs.runtime.interpret)


def triton_unsupported_reason(platform_name: str) -> str | None:
    """Why the Triton kernel set made for ``platform_name`` cannot run here, or ``None``.

    It can on that platform with its hardware, and on that platform emulated while Triton
    interprets (``TRITON_INTERPRET=1``, CPU tensors). A kernel set's ``supported`` callable
    returns ``triton_unsupported_reason(...) is None``; Triton itself being importable is
    checked before this module can be imported.
    """
    from ir_op.platforms import current_platform

    platform = current_platform()
    if platform.name != platform_name:
        return f"platform is {platform.name}, not {platform_name}"
    if platform.emulated and not interpreting():
        return (
            f"the {platform_name} platform is emulated (no {platform_name} hardware here) and "
            "TRITON_INTERPRET=1 is not set, so Triton kernels have nowhere to run"
        )
    return None
