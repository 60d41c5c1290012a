"""The ops ir-op defines. Each is an :class:`~ir_op.IrOp`: call it like a function."""

from ir_op.ops.activation import gelu_and_mul_sparse
from ir_op.ops.norm import fused_add_rms_norm, rms_norm

__all__ = ["fused_add_rms_norm", "gelu_and_mul_sparse", "rms_norm"]
