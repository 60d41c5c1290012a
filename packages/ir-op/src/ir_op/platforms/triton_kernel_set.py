"""A Triton kernel set's providers where Triton is missing.

A Triton kernel set (ir-kernels-cuda, -rocm, -xpu) runs only where Triton imports, on its own
platform (real, or emulated while Triton interprets: ``triton_unsupported_reason`` of the
``triton`` extra checks that part, once Triton is known to be there). Each describes itself
once with a :class:`TritonKernelSet`, whose :meth:`supported` and :meth:`unsupported_reason` its
providers register with::

    KERNEL_SET = TritonKernelSet(
        platform="rocm",
        provider="rocm",
        ops=("rms_norm", ...),
        triton_hint="ROCm builds of torch bring it as pytorch-triton-rocm; ...",
    )

Where Triton is missing, the kernels cannot even be defined: :meth:`register_unsupported`
registers each provider all the same, unsupported with :meth:`triton_missing_reason`, so
``ir-op info`` says why the kernel set does nothing. Nothing here imports Triton before it is
known to be installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass


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

    def unsupported_reason(self) -> str | None:
        """Why the kernel set's providers cannot run on this machine, or ``None`` when they can:
        Triton missing, another platform, or the platform emulated without the interpreter."""
        missing = self.triton_missing_reason()
        if missing is not None:
            return missing
        from ir_op.triton.support import triton_unsupported_reason

        return triton_unsupported_reason(self.platform)

    def supported(self) -> bool:
        """Whether the providers can run here (the ``supported`` callable of each one)."""
        return self.unsupported_reason() is None

    def register_unsupported(
        self, provider: str | None = None, ops: Iterable[str] | None = None
    ) -> None:
        """Register ``provider`` (default :attr:`provider`) for ``ops`` (default :attr:`ops`) as
        unsupported because Triton is missing, with each op's native function as the callable
        (an unsupported provider is never dispatched to)."""
        from ir_op.op import IrOp

        for name in self.ops if ops is None else ops:
            op = IrOp.registry[name]
            op.register_impl(
                self.provider if provider is None else provider,
                supported=False,
                unsupported_reason=self.triton_missing_reason,
            )(op.native_fn)
