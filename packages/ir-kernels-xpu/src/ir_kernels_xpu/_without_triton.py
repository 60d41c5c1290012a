"""Registration where Triton is not installed: the providers exist, unsupported, with the reason.

The kernels cannot even be defined without Triton, so each op's provider is registered with the
op's native function as its callable: an unsupported provider is never dispatched to, and this
keeps ``ir-op info`` saying why the kernel set does nothing here.
"""

from __future__ import annotations

from ir_kernels_xpu._support import PROVIDED_OPS, PROVIDER, triton_missing_reason
from ir_op import IrOp


def register_unsupported() -> None:
    for name in PROVIDED_OPS:
        op = IrOp.registry[name]
        op.register_impl(PROVIDER, supported=False, unsupported_reason=triton_missing_reason)(
            op.native_fn
        )
