"""Registration where Triton is not installed: the providers exist, unsupported, with the reason.

The kernels cannot even be defined without Triton, so each op's ``rocm`` provider is registered
with the op's native function as its callable: an unsupported provider is never dispatched to,
and this keeps ``ir-op info`` saying why the kernel set does nothing here. The ``aiter``
provider's argument checks come from ``ir_op.triton`` too, so it is registered the same way
(ROCm builds of torch always bring Triton, so this is a broken install, not a configuration).
"""

from __future__ import annotations

from ir_kernels_rocm._support import PROVIDED_OPS, PROVIDER, triton_missing_reason
from ir_op import IrOp
from ir_op.platforms.rocm import AITER_PROVIDER

AITER_OPS = ("rms_norm", "fused_add_rms_norm")


def register_unsupported() -> None:
    for provider, names in ((PROVIDER, PROVIDED_OPS), (AITER_PROVIDER, AITER_OPS)):
        for name in names:
            op = IrOp.registry[name]
            op.register_impl(provider, supported=False, unsupported_reason=triton_missing_reason)(
                op.native_fn
            )
