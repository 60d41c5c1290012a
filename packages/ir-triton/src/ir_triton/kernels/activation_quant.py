"""``silu_and_mul_static_fp8_quant`` in Triton: SwiGLU's gate fused with the static fp8
quantization of its output, in one pass; shared by the Triton kernel sets.

Semantics are those of the composition in ``ir_op.ops.composite``: for ``x = [gate | up]``
(each ``D`` wide), ``silu(g) = g / (1 + exp(-g))`` and the product are float32, rounded to
``x``'s dtype (what ``silu_and_mul`` returns); that value is divided by the scale in float32
(``div_rn``, as torch divides, or by a multiply with the reciprocal where the launch's
:attr:`~ir_triton.configs.RowLaunch.exact_division` is off), saturated to ``±fp8_max`` with NaN kept
(:func:`~ir_triton.kernels.quant.saturate`) and converted once by the store into the fp8 output
(:mod:`ir_triton.fp8`). Infinities follow the formula: a ``-inf`` gate gives NaN
(``-inf * 0``), as torch's SiLU does.

``silu_and_mul_quant_kernel`` is elementwise over the output: a ``[ROWS, BLOCK]`` tile of
outputs, reading the matching gate and up elements once (short rows packed several per
program, wide ones cut into ``BLOCK``-wide chunks along the grid's second axis). The unfused pair
writes the product in ``x``'s dtype and reads it back: 8 bytes per bf16 output element against 5.

Why one body for every vendor: the arithmetic is the composition's and the fp8 conversion is the
store's, which each backend compiles to its GPU's instruction; tiles, warps, launch options and
the cache hint of the (only) read come from the kernel set's
:class:`~ir_triton.configs.RowLaunch`.

Arguments the kernel takes
(:func:`~ir_triton.supports.silu_and_mul_static_fp8_quant_supports_args`): fp16, bf16 or
fp32 ``x`` of even width on the platform's device in row layout; a one-element float32 scale on
``x``'s device; an ``fp8_dtype`` the kernel set's GPU converts to. The output is a new
contiguous ``[..., D]``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_op import ops
from ir_op.impl import SupportsArgs
from ir_triton.kernels.activation import activate, load_gate_and_up
from ir_triton.kernels.quant import divide, saturate
from ir_triton.kernels.static_quant import Fp8ElementwiseProviders
from ir_triton.pdl import wait_for_previous_kernel
from ir_triton.supports import silu_and_mul_static_fp8_quant_supports_args

# -- Triton kernel --------------------------------------------------------------------------------


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def silu_and_mul_quant_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    scale_ptr,
    out_ptr,
    n_rows,
    D: tl.constexpr,
    FP8_MAX: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    EXACT: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """``quant(silu(gate) * up)`` for this program's ``[ROWS, BLOCK]`` tile of the output."""
    if USE_PDL:
        wait_for_previous_kernel()
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = (rows < n_rows)[:, None] & (cols < D)[None, :]
    rows = rows.to(tl.int64)[:, None]  # row * stride can pass 2**31 elements
    gate_ptrs = x_ptr + rows * x_row_stride + cols[None, :]
    gate, up = load_gate_and_up(gate_ptrs, D, mask, STREAM, READ_ONCE)
    activated = (activate(gate, 0) * up).to(x_ptr.dtype.element_ty)  # ACTIVATION 0: SiLU
    q = saturate(divide(activated.to(tl.float32), tl.load(scale_ptr), EXACT), FP8_MAX)
    tl.store(out_ptr + rows * D + cols[None, :], q.to(out_ptr.dtype.element_ty), mask=mask)


# -- operator and provider ------------------------------------------------------------------------


class SiluAndMulQuantProviders(Fp8ElementwiseProviders):
    """A kernel set's fused ``silu_and_mul_static_fp8_quant`` operator and provider on
    :func:`silu_and_mul_quant_kernel` (the rest: :class:`Fp8ElementwiseProviders`)."""

    implements = ops.silu_and_mul_static_fp8_quant
    kernel = silu_and_mul_quant_kernel

    def supports_args(self) -> SupportsArgs:
        return silu_and_mul_static_fp8_quant_supports_args(self.formats)

    @staticmethod
    def new_output(x: Tensor, fp8_dtype: torch.dtype) -> Tensor:
        """``[..., D]`` for ``x = [gate | up]`` of width ``2 * D``."""
        return torch.empty((*x.shape[:-1], x.shape[-1] // 2), dtype=fp8_dtype, device=x.device)
