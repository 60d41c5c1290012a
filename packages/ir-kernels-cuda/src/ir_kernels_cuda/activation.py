"""The ``cuda`` provider of ``gelu_and_mul_sparse`` (Gemma3n's sparse GeGLU): Triton kernels and
their registration.

Semantics follow ``ir_op.ops.gelu_and_mul_sparse``: each row's gate mean and population standard
deviation (float32, two passes as in the native function) give the threshold
``mean + std * std_multiplier``; ``relu(gate - threshold)`` goes through GELU (erf form, or the
tanh approximation) and multiplies ``up``, all in float32, rounded once to the output dtype.
``relu`` keeps NaN (``where(v < 0, 0, v)``), as ``torch.relu`` does.

As for the norms (:mod:`ir_kernels_cuda.norm`): ``*_rows_kernel`` holds ``[ROWS, BLOCK]`` tiles
of gate and up in registers; ``*_looped_kernel`` takes one row per program in ``BLOCK``-wide
chunks, in three passes (mean, spread, output). The half width ``D`` is a constexpr, as the row
widths of the norms are (:mod:`ir_kernels_cuda.norm`).

Arguments the kernels take (``supports_args``): fp16, bf16 or fp32 ``x`` of even width on the
platform's device in row layout (last dimension contiguous, any row stride), and an
``approximate`` of ``"none"`` or ``"tanh"``. Others fall through to the next provider, and the
native implementation raises the errors.
"""

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda.pdl import PDL, pdl_enabled, wait_for_previous_kernel
from ir_op import ops
from ir_op.ops.activation import GELU_APPROXIMATIONS
from ir_triton import (
    NVIDIA_ROW_TABLE,
    BoundLauncher,
    KernelLauncher,
    RowTable,
    define_kernel_op,
    tracing,
)
from ir_triton.rows import (
    FLOAT_DTYPES,
    NOT_ARGUMENTS,
    has_row_layout,
    on_platform_device,
    row_stride,
)

# -- Triton kernels -------------------------------------------------------------------------------


@triton.jit  # type: ignore[untyped-decorator]
def gelu(v, TANH: tl.constexpr):  # type: ignore[no-untyped-def]
    """GELU in float32 of ``v >= 0`` (a relu output, or NaN): the tanh approximation or the
    exact erf form."""
    if TANH:
        # 0.5 * (1 + tanh(u)) = sigmoid(2u), so gelu(v) = v / (1 + exp(-2u)) with
        # u = sqrt(2 / pi) * (v + 0.044715 v^3): one exp2 and one division, exact at +inf
        # (exp2(-inf) = 0) and never overflowing for v >= 0. The constants fold -2 * log2(e).
        minus_2u_log2e = v * (-2.302208198144325 + -0.1029432395800235 * v * v)
        return v / (1.0 + tl.math.exp2(minus_2u_log2e))
    else:
        return 0.5 * v * (1.0 + tl.math.erf(v * 0.7071067811865476))


@triton.jit
def relu_keep_nan(v):  # type: ignore[no-untyped-def]
    """``max(v, 0)`` that keeps NaN, as ``torch.relu`` does (one instruction)."""
    return tl.maximum(v, 0.0, propagate_nan=tl.PropagateNan.ALL)


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def gelu_and_mul_sparse_rows_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    out_ptr,
    n_rows,
    std_multiplier,
    D: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    TANH: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """Rows of ``[gate | up]``, each ``D`` wide, into a new contiguous ``[n_rows, D]`` out.

    One pass over memory: gate and up are loaded once, up while the gate's statistics reduce.
    """
    if USE_PDL:
        wait_for_previous_kernel()
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    col_mask = cols < D
    mask = (rows < n_rows)[:, None] & col_mask[None, :]
    rows = rows.to(tl.int64)[:, None]
    gate_ptrs = x_ptr + rows * x_row_stride + cols[None, :]

    # read once: first out of L2
    gate = tl.load(gate_ptrs, mask=mask, other=0.0, eviction_policy="evict_first")
    up = tl.load(gate_ptrs + D, mask=mask, other=0.0, eviction_policy="evict_first")
    gate = gate.to(tl.float32)
    mean = tl.sum(gate, axis=1) / D
    centered = gate - mean[:, None]
    if BLOCK > D:  # padding columns must not count in the spread
        centered = tl.where(col_mask[None, :], centered, 0.0)
    std = tl.sqrt_rn(tl.sum(centered * centered, axis=1) / D)
    threshold = mean + std * std_multiplier
    sparse_gate = relu_keep_nan(gate - threshold[:, None])
    out = gelu(sparse_gate, TANH) * up.to(tl.float32)
    tl.store(out_ptr + rows * D + cols[None, :], out.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit  # type: ignore[untyped-decorator]
def gelu_and_mul_sparse_looped_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    out_ptr,
    std_multiplier,
    D: tl.constexpr,
    BLOCK: tl.constexpr,
    TANH: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """One row per program, in ``BLOCK``-wide chunks, into a new contiguous out."""
    if USE_PDL:
        wait_for_previous_kernel()
    row = tl.program_id(0).to(tl.int64)
    gate_row = x_ptr + row * x_row_stride
    out_row = out_ptr + row * D
    chunks: tl.constexpr = (D + BLOCK - 1) // BLOCK

    sums = tl.zeros([BLOCK], dtype=tl.float32)
    for chunk in range(chunks):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        sums += tl.load(gate_row + cols, mask=cols < D, other=0.0).to(tl.float32)
    mean = tl.sum(sums, axis=0) / D

    squares = tl.zeros([BLOCK], dtype=tl.float32)
    for chunk in range(chunks):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < D
        gate = tl.load(gate_row + cols, mask=mask, other=0.0).to(tl.float32)
        centered = tl.where(mask, gate - mean, 0.0)
        squares += centered * centered
    threshold = mean + tl.sqrt_rn(tl.sum(squares, axis=0) / D) * std_multiplier

    for chunk in range(chunks):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < D
        # the last pass over the row: first out of L2
        gate = tl.load(gate_row + cols, mask=mask, other=0.0, eviction_policy="evict_first")
        up = tl.load(gate_row + D + cols, mask=mask, other=0.0, eviction_policy="evict_first")
        gate, up = gate.to(tl.float32), up.to(tl.float32)
        out = gelu(relu_keep_nan(gate - threshold), TANH) * up
        tl.store(out_row + cols, out.to(out_ptr.dtype.element_ty), mask=mask)


# -- launching ------------------------------------------------------------------------------------

ROW_TABLE: RowTable = NVIDIA_ROW_TABLE
"""Block and warp choices (a module global, so a benchmark can try another table)."""

SPARSE_ROWS_LAUNCHER = KernelLauncher(gelu_and_mul_sparse_rows_kernel)
SPARSE_LOOPED_LAUNCHER = KernelLauncher(gelu_and_mul_sparse_looped_kernel)

_Plan = tuple[RowTable, int, BoundLauncher]
"""(the table it was made with, rows per program (0: looped kernel), the bound launch)."""

_PLANS: dict[tuple[int, bool, bool, bool], _Plan] = {}


def _plan(d: int, tanh: bool, pdl: bool, decode: bool) -> _Plan:
    """Kernel, constexprs and options for one width, GELU form and launch size (made once)."""
    table = ROW_TABLE
    config = table.config(d, 1 if decode else None)
    options = {"num_warps": config.num_warps, "launch_pdl": pdl}
    if config.looped:
        bound = SPARSE_LOOPED_LAUNCHER.bind(d, config.block, tanh, pdl, **options)
        plan: _Plan = (table, 0, bound)
    else:
        bound = SPARSE_ROWS_LAUNCHER.bind(d, config.block, config.rows, tanh, pdl, **options)
        plan = (table, config.rows, bound)
    _PLANS[d, tanh, pdl, decode] = plan
    return plan


def launch_gelu_and_mul_sparse(
    x: Tensor, out: Tensor, std_multiplier: float, approximate: str, traced: bool
) -> None:
    """Write ``gelu_and_mul_sparse(x)`` into ``out`` (a new contiguous ``[..., d]``);
    ``traced`` launches the way ``torch.compile`` traces, without PDL."""
    d = out.shape[-1]
    if traced:  # the width is a constexpr: a symbolic one is specialized (one graph per width)
        d = int(d)
    n_rows = out.numel() // d if d else 0
    if n_rows == 0:
        return
    tanh = approximate == "tanh"
    pdl = False if traced else PDL.enabled
    if pdl is None:
        pdl = pdl_enabled()
    decode = not traced and n_rows <= ROW_TABLE.decode_rows  # (a traced count may be symbolic)
    plan = _PLANS.get((d, tanh, pdl, decode))
    if plan is None or plan[0] is not ROW_TABLE:
        plan = _plan(d, tanh, pdl, decode)
    _, rows, bound = plan
    launch = bound.traced if traced else bound.launch
    if rows:
        launch(((n_rows + rows - 1) // rows,), x, row_stride(x), out, n_rows, std_multiplier)
    else:
        launch((n_rows,), x, row_stride(x), out, std_multiplier)


def gelu_and_mul_sparse_supports_args(
    x: Tensor, std_multiplier: float, approximate: str = "none"
) -> bool:
    try:
        return (
            x.dtype in FLOAT_DTYPES
            and on_platform_device(x)
            and (x.is_contiguous() or has_row_layout(x))
            and bool(x.shape[-1] % 2 == 0)
            and approximate in GELU_APPROXIMATIONS
        )
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


def _half_width(shape: torch.Size) -> tuple[int, ...]:
    """The output shape: ``x``'s with half its last dimension."""
    return (*shape[:-1], shape[-1] // 2)


def _gelu_and_mul_sparse_op(x: Tensor, std_multiplier: float, approximate: str = "none") -> Tensor:
    out = x.new_empty(_half_width(x.shape))
    launch_gelu_and_mul_sparse(x, out, std_multiplier, approximate, traced=True)
    return out


GELU_AND_MUL_SPARSE_OP = define_kernel_op(
    "ir_cuda::gelu_and_mul_sparse",
    _gelu_and_mul_sparse_op,
    fake=ops.gelu_and_mul_sparse.native_fn,
)


def gelu_and_mul_sparse_cuda(x: Tensor, std_multiplier: float, approximate: str = "none") -> Tensor:
    if tracing():
        traced: Tensor = GELU_AND_MUL_SPARSE_OP(x, std_multiplier, approximate)
        return traced
    shape = x.shape
    out = x.new_empty((shape[0], shape[1] // 2) if len(shape) == 2 else _half_width(shape))
    launch_gelu_and_mul_sparse(x, out, std_multiplier, approximate, traced=False)
    return out


ops.gelu_and_mul_sparse.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=gelu_and_mul_sparse_supports_args,
)(gelu_and_mul_sparse_cuda)
