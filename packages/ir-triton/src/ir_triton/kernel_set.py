"""Where a Triton kernel set runs, and its providers where Triton is missing.

A Triton kernel set (ir-kernels-cuda, -rocm, -xpu) runs only where Triton imports, on its own
platform: real, or emulated (forced with ``IR_OP_PLATFORM`` on a machine without its hardware)
while Triton interprets. Triton decides when a kernel is *defined* (``@triton.jit`` runs)
whether it compiles for the GPU or runs in its interpreter: ``TRITON_INTERPRET=1`` gives an
interpreted function that takes CPU tensors, which is how CI runs the GPU kernel sets (the ir
pytest plugin sets it for an emulated platform before any kernel set loads). Each kernel set
describes itself once with a :class:`TritonKernelSet`, whose :meth:`~TritonKernelSet.supported`
and :meth:`~TritonKernelSet.unsupported_reason` its providers register with::

    KERNEL_SET = TritonKernelSet(
        platform="rocm",
        provider="rocm",
        ops=("rms_norm", ...),
        triton_hint="ROCm builds of torch bring it as pytorch-triton-rocm; ...",
    )

Where Triton is missing (or its interpreter is asked for without numpy, which it needs), the
kernels cannot even be defined:
:meth:`~TritonKernelSet.register_unsupported` registers each provider all the same, unsupported
with :meth:`~TritonKernelSet.triton_missing_reason`, so ``ir-op info`` says why the kernel set
does nothing. This module never imports Triton at import time (ir-op itself needs no Triton);
``ir_triton`` re-exports :func:`interpreting` and :func:`triton_unsupported_reason`.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass

_TRUE = ("1", "true", "yes", "on")


EMULATE_HINT = "pip install 'ir-op[emulate]', or numpy"
"""How to get what Triton's interpreter needs beyond Triton itself."""


def _interpret_requested() -> bool:
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in _TRUE


def interpreting() -> bool:
    """Whether Triton kernels defined now run in Triton's interpreter (``TRITON_INTERPRET``)."""
    if interpreter_missing_reason() is not None:
        return False  # asked for, but Triton cannot even be imported so (see below)
    try:
        from triton import knobs
    except ImportError:  # no Triton, or one before 3.4 (its switches in the environment only)
        return _interpret_requested()
    return bool(knobs.runtime.interpret)


def interpreter_missing_reason() -> str | None:
    """Why Triton's interpreter, asked for with ``TRITON_INTERPRET=1``, cannot run, or ``None``.

    The interpreter runs kernels on numpy arrays, and once it is asked for ``import triton``
    itself imports numpy. torch does not require numpy, so a production install (ir-op and a
    kernel set) has Triton but may lack numpy: Triton is then there, and only emulation is not.
    """
    if _interpret_requested() and importlib.util.find_spec("numpy") is None:
        return (
            "TRITON_INTERPRET=1 asks for Triton's interpreter, which needs numpy, and numpy is "
            f"not installed ({EMULATE_HINT})"
        )
    return None


def triton_unsupported_reason(platform_name: str) -> str | None:
    """Why a Triton kernel set made for ``platform_name`` cannot run here (Triton being
    installed), or ``None``: it can on that platform with its hardware, and on that platform
    emulated while Triton interprets (``TRITON_INTERPRET=1``, CPU tensors)."""
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


@dataclass(frozen=True)
class TritonKernelSet:
    """A Triton kernel set: its platform, its provider name and the ops it provides."""

    platform: str
    """The platform the kernels are written for (``IR_OP_PLATFORM`` name)."""
    provider: str
    ops: tuple[str, ...]
    """The ops the kernel set registers :attr:`provider` for."""
    triton_hint: str
    """How to get Triton on this platform, for the reason given where it is missing."""

    def triton_missing_reason(self) -> str | None:
        """Why Triton cannot be used here (not installed), or ``None``."""
        if importlib.util.find_spec("triton") is None:
            return f"triton is not installed ({self.triton_hint})"
        return None

    def kernels_unavailable_reason(self) -> str | None:
        """Why the kernels cannot even be defined here, or ``None``: Triton is not installed,
        or its interpreter is asked for and lacks numpy. A kernel set imports its kernel modules
        only where this is ``None``, and :meth:`register_unsupported` otherwise."""
        return self.triton_missing_reason() or interpreter_missing_reason()

    def unsupported_reason(self) -> str | None:
        """Why the kernel set's providers cannot run on this machine, or ``None`` when they can:
        Triton (or the interpreter's numpy) missing, another platform, or the platform emulated
        without the interpreter."""
        missing = self.kernels_unavailable_reason()
        if missing is not None:
            return missing
        return triton_unsupported_reason(self.platform)

    def supported(self) -> bool:
        """Whether the providers can run here (the ``supported`` callable of each one)."""
        return self.unsupported_reason() is None

    def register_unsupported(
        self, provider: str | None = None, ops: Iterable[str] | None = None
    ) -> None:
        """Register ``provider`` (default :attr:`provider`) for ``ops`` (default :attr:`ops`) as
        unsupported because the kernels cannot be defined (:meth:`kernels_unavailable_reason`),
        with each op's native function as the callable (an unsupported provider is never
        dispatched to)."""
        from ir_op.op import IrOp

        for name in self.ops if ops is None else ops:
            op = IrOp.registry[name]
            op.register_impl(
                self.provider if provider is None else provider,
                supported=False,
                unsupported_reason=self.kernels_unavailable_reason,
            )(op.native_fn)
