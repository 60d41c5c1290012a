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

import triton
import triton.language as tl
from torch import Tensor

from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_op import ops
from ir_op.ops.activation import GELU_APPROXIMATIONS
from ir_op.triton import NVIDIA_ROW_TABLE, KernelLauncher, RowTable, define_kernel_op, tracing
from ir_op.triton.rows import FLOAT_DTYPES, has_row_layout, on_platform_device, row_stride

# -- Triton kernels -------------------------------------------------------------------------------


@triton.jit  # type: ignore[untyped-decorator]
def gelu(v, TANH: tl.constexpr):  # type: ignore[no-untyped-def]
    """GELU in float32: the tanh approximation or the exact erf form."""
    if TANH:
        # tanh(u) = 1 - 2 / (exp(2u) + 1): exact at +-inf, and u >= 0 here (v is a relu output)
        u = 0.7978845608028654 * (v + 0.044715 * v * v * v)
        return 0.5 * v * (2.0 - 2.0 / (tl.exp(2.0 * u) + 1.0))
    else:
        return 0.5 * v * (1.0 + tl.math.erf(v * 0.7071067811865476))


@triton.jit
def relu_keep_nan(v):  # type: ignore[no-untyped-def]
    return tl.where(v < 0.0, 0.0, v)


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
):
    """Rows of ``[gate | up]``, each ``D`` wide, into a new contiguous ``[n_rows, D]`` out."""
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    mask = (rows < n_rows)[:, None] & (cols < D)[None, :]
    rows = rows.to(tl.int64)[:, None]
    gate_ptrs = x_ptr + rows * x_row_stride + cols[None, :]

    # read once: first out of L2
    gate = tl.load(gate_ptrs, mask=mask, other=0.0, eviction_policy="evict_first")
    up = tl.load(gate_ptrs + D, mask=mask, other=0.0, eviction_policy="evict_first")
    gate, up = gate.to(tl.float32), up.to(tl.float32)
    mean = tl.sum(gate, axis=1) / D
    centered = tl.where(mask, gate - mean[:, None], 0.0)
    std = tl.sqrt_rn(tl.sum(centered * centered, axis=1) / D)
    threshold = mean + std * std_multiplier
    sparse_gate = relu_keep_nan(gate - threshold[:, None])
    out = gelu(sparse_gate, TANH) * up
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
):
    """One row per program, in ``BLOCK``-wide chunks, into a new contiguous out."""
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


def launch_gelu_and_mul_sparse(
    x: Tensor, out: Tensor, std_multiplier: float, approximate: str, traced: bool
) -> None:
    """Write ``gelu_and_mul_sparse(x)`` into ``out`` (a new contiguous ``[..., d]``)."""
    d = out.shape[-1]
    if traced:  # the width is a constexpr: a symbolic one is specialized (one graph per width)
        d = int(d)
    n_rows = out.numel() // d if d else 0
    if n_rows == 0:
        return
    config = ROW_TABLE.config(d)
    tanh = approximate == "tanh"
    if config.looped:
        launcher = SPARSE_LOOPED_LAUNCHER
        (launcher.traced if traced else launcher.launch)(
            (n_rows,),
            x,
            row_stride(x),
            out,
            std_multiplier,
            d,
            config.block,
            tanh,
            num_warps=config.num_warps,
        )
        return
    launcher = SPARSE_ROWS_LAUNCHER
    rows = config.rows
    (launcher.traced if traced else launcher.launch)(
        ((n_rows + rows - 1) // rows,),
        x,
        row_stride(x),
        out,
        n_rows,
        std_multiplier,
        d,
        config.block,
        rows,
        tanh,
        num_warps=config.num_warps,
    )


def gelu_and_mul_sparse_supports_args(
    x: Tensor, std_multiplier: float, approximate: str = "none"
) -> bool:
    return (
        x.dtype in FLOAT_DTYPES
        and on_platform_device(x)
        and has_row_layout(x)
        and bool(x.shape[-1] % 2 == 0)
        and approximate in GELU_APPROXIMATIONS
    )


def _gelu_and_mul_sparse_op(x: Tensor, std_multiplier: float, approximate: str = "none") -> Tensor:
    out = x.new_empty((*x.shape[:-1], x.shape[-1] // 2))
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
    out = x.new_empty((*x.shape[:-1], x.shape[-1] // 2))
    launch_gelu_and_mul_sparse(x, out, std_multiplier, approximate, traced=False)
    return out


ops.gelu_and_mul_sparse.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=gelu_and_mul_sparse_supports_args,
)(gelu_and_mul_sparse_cuda)
