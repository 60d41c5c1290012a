"""The ops ir-op defines. Each is an :class:`~ir_op.IrOp`: call it like a function."""

from ir_op.ops.activation import gelu_and_mul, gelu_and_mul_sparse, silu_and_mul
from ir_op.ops.composite import (
    fused_add_rms_norm_static_fp8_quant,
    rms_norm_static_fp8_quant,
    silu_and_mul_static_fp8_quant,
)
from ir_op.ops.norm import fused_add_rms_norm, rms_norm
from ir_op.ops.quant import dynamic_scaled_fp8_quant, static_scaled_fp8_quant
from ir_op.ops.rotary import rotary_embedding

__all__ = [
    "dynamic_scaled_fp8_quant",
    "fused_add_rms_norm",
    "fused_add_rms_norm_static_fp8_quant",
    "gelu_and_mul",
    "gelu_and_mul_sparse",
    "rms_norm",
    "rms_norm_static_fp8_quant",
    "rotary_embedding",
    "silu_and_mul",
    "silu_and_mul_static_fp8_quant",
    "static_scaled_fp8_quant",
]
