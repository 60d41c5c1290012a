"""Platforms: which machine ir-op runs on, and the kernel sets it loads.

:func:`current_platform` is resolved once per process: ``IR_OP_PLATFORM=<name>`` forces one
(emulated when its hardware is absent), otherwise the first installed platform plugin whose
hardware is present, then ROCm, CUDA, XPU and finally the CPU.
"""

from __future__ import annotations

import os
import threading

from ir_op.platforms.base import Platform
from ir_op.platforms.cpu import CpuPlatform
from ir_op.platforms.cuda import CudaPlatform
from ir_op.platforms.plugins import (
    available_kernel_sets,
    kernel_set_errors,
    load_kernel_sets,
    loaded_kernel_sets,
    platform_plugin_errors,
    platform_plugins,
)
from ir_op.platforms.rocm import RocmPlatform
from ir_op.platforms.xpu import XpuPlatform

__all__ = [
    "PLATFORM_ENV_VAR",
    "CpuPlatform",
    "CudaPlatform",
    "Platform",
    "RocmPlatform",
    "XpuPlatform",
    "available_kernel_sets",
    "builtin_platforms",
    "current_platform",
    "ensure_kernels_loaded",
    "kernel_set_errors",
    "load_kernel_sets",
    "loaded_kernel_sets",
    "platform_plugin_errors",
]

PLATFORM_ENV_VAR = "IR_OP_PLATFORM"

_lock = threading.RLock()
_current: Platform | None = None
_kernels_state = "unloaded"  # "unloaded" -> "loading" -> "loaded"


def builtin_platforms() -> dict[str, type[Platform]]:
    """The platforms ir-op ships, in detection order."""
    return {p.name: p for p in (RocmPlatform, CudaPlatform, XpuPlatform, CpuPlatform)}


def _resolve() -> Platform:
    plugins = platform_plugins()
    builtins = builtin_platforms()
    forced = os.environ.get(PLATFORM_ENV_VAR, "").strip()
    if forced:
        cls = builtins.get(forced) or plugins.get(forced)
        if cls is None:
            valid = sorted({*builtins, *plugins})
            raise ValueError(
                f"{PLATFORM_ENV_VAR}={forced!r} names no platform; valid: {', '.join(valid)}"
            )
        return cls(emulated=not cls.is_available())
    for cls in (*plugins.values(), *builtins.values()):
        if cls.is_available():
            return cls()
    return CpuPlatform()


def current_platform() -> Platform:
    """The platform of this process (resolved on first call, then cached)."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = _resolve()
    return _current


def ensure_kernels_loaded() -> None:
    """Have the current platform import its kernel sets, once.

    Called before the first priority, hash or dispatch, so nothing reads the registry before
    the kernel sets have registered their providers. Re-entrant calls (a kernel set that reads
    a priority while it registers) return at once; a failure leaves the state as it was.
    """
    global _kernels_state
    if _kernels_state != "unloaded":
        return
    with _lock:
        if _kernels_state != "unloaded":
            return
        _kernels_state = "loading"
        try:
            current_platform().import_ir_kernels()
        except BaseException:
            _kernels_state = "unloaded"
            raise
        _kernels_state = "loaded"


def _reset_for_tests() -> None:
    """Forget the resolved platform and loaded kernel sets (``ir_op.testing`` uses this)."""
    global _current, _kernels_state
    with _lock:
        _current = None
        _kernels_state = "unloaded"
    from ir_op.platforms.plugins import _reset

    _reset()
