"""The ``rocm`` providers of ``rms_norm`` and ``fused_add_rms_norm``: Triton kernels for AMD
Instinct GPUs and their registration.

Semantics are those of ``ir_op.ops.rms_norm`` / ``fused_add_rms_norm``: the (residual) sum and
the mean of squares are float32; the normalized row is rounded to the output dtype, then
multiplied by the weight (in float32, on the rounded value: the same result as a product in the
weight's dtype, which equals the activation's) and rounded again.

Two shapes of kernel, chosen by :data:`ROW_TABLE` (:data:`~ir_kernels_rocm.configs.CDNA_ROW_TABLE`):

- ``rms_norm_rows_kernel`` / ``fused_add_rms_norm_rows_kernel`` (one body, ``rms_norm_rows``): a
  ``[ROWS, BLOCK]`` tile held in registers, rows up to 16384 wide (short rows packed several per
  program);
- ``rms_norm_looped_kernel``: one program per wider row, in ``BLOCK``-wide chunks: a first pass
  for the statistic, a second that re-reads the inputs (from L2 or the Infinity Cache),
  normalizes and writes.

How these bodies differ from the cuda kernel set's, and why the rest is the same:

- Read-once activations are loaded with ``cache_modifier=".cg"``, which the AMD backend emits as
  a streaming (``nt``) load on gfx942 and gfx950, keeping them from displacing the weight and
  the looped kernel's rows in L2. NVIDIA's ``eviction_policy`` hints are not used: the AMD
  backend drops them (the compiled code is identical with and without).
- The looped kernel's first pass reads without the streaming hint, so its second pass finds the
  row in L2.
- The arithmetic is the same because it is the op's: float32 statistics and the op's two
  roundings. Offsets are 64-bit per row as there; for one-row programs (rows of 4096 or more)
  the AMD compiler still turns every access into a buffer load or store with a scalar base,
  and packed tiles of short rows are too small for that to matter.

Outputs may alias inputs (the in-place provider): every element is read before the program that
owns its row writes it.

Eager calls launch through :class:`~ir_op.triton.KernelLauncher`; while compiling or tracing the
providers call the ``torch.ops.ir_rocm`` operators defined here instead.
"""

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_kernels_rocm._support import PROVIDER, supported, unsupported_reason
from ir_kernels_rocm.configs import CDNA_ROW_TABLE
from ir_op import ops
from ir_op.triton import KernelLauncher, RowTable, define_kernel_op, tracing
from ir_op.triton.rows import row_stride
from ir_op.triton.supports import fused_add_rms_norm_supports_args, rms_norm_supports_args

# -- Triton kernels -------------------------------------------------------------------------------
#
# Row widths (N_COLS) and the statistic's width (VARIANCE_SIZE) are constexprs: a model has one or
# two, and each runtime argument costs host time per launch. Loops over chunks need a constexpr
# count anyway (loops with a runtime bound fail in Triton 3.6's interpreter under NumPy 2.4).


@triton.jit  # type: ignore[untyped-decorator]
def rms_norm_rows(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    residual_ptr,
    residual_row_stride,
    weight_ptr,
    out_ptr,
    out_row_stride,
    residual_out_ptr,
    residual_out_row_stride,
    n_rows,
    epsilon,
    N_COLS: tl.constexpr,
    VARIANCE_SIZE: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
):
    """Normalize the rows of this program's ``[ROWS, BLOCK]`` tile (both row kernels)."""
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    col_mask = cols < N_COLS
    mask = (rows < n_rows)[:, None] & col_mask[None, :]
    rows = rows.to(tl.int64)[:, None]  # row * stride can pass 2**31 elements
    cols_2d = cols[None, :]

    x = tl.load(
        x_ptr + rows * x_row_stride + cols_2d, mask=mask, other=0.0, cache_modifier=".cg"
    ).to(tl.float32)
    if HAS_RESIDUAL:
        residual = tl.load(
            residual_ptr + rows * residual_row_stride + cols_2d,
            mask=mask,
            other=0.0,
            cache_modifier=".cg",
        )
        x = x + residual.to(tl.float32)
        tl.store(
            residual_out_ptr + rows * residual_out_row_stride + cols_2d,
            x.to(residual_out_ptr.dtype.element_ty),
            mask=mask,
        )
    if VARIANCE_SIZE < N_COLS:
        sample = tl.where(cols_2d < VARIANCE_SIZE, x, 0.0)
        mean_square = tl.sum(sample * sample, axis=1) / VARIANCE_SIZE
    else:
        mean_square = tl.sum(x * x, axis=1) / N_COLS
    rstd = tl.rsqrt(mean_square + epsilon)
    out = (x * rstd[:, None]).to(out_ptr.dtype.element_ty)
    if HAS_WEIGHT:
        weight = tl.load(weight_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
        out = (out.to(tl.float32) * weight[None, :]).to(out_ptr.dtype.element_ty)
    tl.store(out_ptr + rows * out_row_stride + cols_2d, out, mask=mask)


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def rms_norm_rows_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    weight_ptr,
    out_ptr,
    n_rows,
    epsilon,
    N_COLS: tl.constexpr,
    VARIANCE_SIZE: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
):
    """``rms_norm`` into a new contiguous ``out`` (rows ``N_COLS`` apart)."""
    rms_norm_rows(
        x_ptr,
        x_row_stride,
        None,
        0,
        weight_ptr,
        out_ptr,
        N_COLS,
        None,
        0,
        n_rows,
        epsilon,
        N_COLS,
        VARIANCE_SIZE,
        BLOCK,
        ROWS,
        False,
        HAS_WEIGHT,
    )


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def fused_add_rms_norm_rows_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    residual_ptr,
    residual_row_stride,
    weight_ptr,
    out_ptr,
    out_row_stride,
    residual_out_ptr,
    residual_out_row_stride,
    n_rows,
    epsilon,
    N_COLS: tl.constexpr,
    VARIANCE_SIZE: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
):
    """``fused_add_rms_norm``; the outputs may be the inputs (in place)."""
    rms_norm_rows(
        x_ptr,
        x_row_stride,
        residual_ptr,
        residual_row_stride,
        weight_ptr,
        out_ptr,
        out_row_stride,
        residual_out_ptr,
        residual_out_row_stride,
        n_rows,
        epsilon,
        N_COLS,
        VARIANCE_SIZE,
        BLOCK,
        ROWS,
        True,
        HAS_WEIGHT,
    )


@triton.jit  # type: ignore[untyped-decorator]
def rms_norm_looped_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    residual_ptr,
    residual_row_stride,
    weight_ptr,
    out_ptr,
    out_row_stride,
    residual_out_ptr,
    residual_out_row_stride,
    epsilon,
    N_COLS: tl.constexpr,
    VARIANCE_SIZE: tl.constexpr,
    BLOCK: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
):
    """One row per program, in ``BLOCK``-wide chunks; the outputs may be the inputs."""
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_row_stride
    out_row = out_ptr + row * out_row_stride

    # First pass: default caching, so the second pass finds the row in L2.
    squares = tl.zeros([BLOCK], dtype=tl.float32)
    for chunk in range((VARIANCE_SIZE + BLOCK - 1) // BLOCK):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < VARIANCE_SIZE
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_RESIDUAL:
            residual_row = residual_ptr + row * residual_row_stride
            x = x + tl.load(residual_row + cols, mask=mask, other=0.0).to(tl.float32)
        squares += x * x
    rstd = tl.rsqrt(tl.sum(squares, axis=0) / VARIANCE_SIZE + epsilon)

    # Second pass: the last read of the row, streaming.
    for chunk in range((N_COLS + BLOCK - 1) // BLOCK):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < N_COLS
        x = tl.load(x_row + cols, mask=mask, other=0.0, cache_modifier=".cg").to(tl.float32)
        if HAS_RESIDUAL:
            residual_row = residual_ptr + row * residual_row_stride
            residual = tl.load(residual_row + cols, mask=mask, other=0.0, cache_modifier=".cg")
            x = x + residual.to(tl.float32)
            tl.store(
                residual_out_ptr + row * residual_out_row_stride + cols,
                x.to(residual_out_ptr.dtype.element_ty),
                mask=mask,
            )
        out = (x * rstd).to(out_ptr.dtype.element_ty)
        if HAS_WEIGHT:
            weight = tl.load(weight_ptr + cols, mask=mask, other=0.0).to(tl.float32)
            out = (out.to(tl.float32) * weight).to(out_ptr.dtype.element_ty)
        tl.store(out_row + cols, out, mask=mask)


# -- launching ------------------------------------------------------------------------------------

ROW_TABLE: RowTable = CDNA_ROW_TABLE
"""Block and wavefront choices (a module global, so tests and benchmarks can try another)."""

ROWS_LAUNCHER = KernelLauncher(rms_norm_rows_kernel)
FUSED_ROWS_LAUNCHER = KernelLauncher(fused_add_rms_norm_rows_kernel)
LOOPED_LAUNCHER = KernelLauncher(rms_norm_looped_kernel)


def launch_rms_norm(
    x: Tensor,
    residual: Tensor | None,
    weight: Tensor | None,
    out: Tensor,
    residual_out: Tensor | None,
    epsilon: float,
    variance_size: int | None,
    traced: bool,
) -> None:
    """Write ``rms_norm(x [+ residual])`` into ``out`` (and the sum into ``residual_out``).

    All tensors are in row layout with ``x``'s shape. Without a residual, ``out`` is a new
    contiguous tensor; with one, the outputs may be the inputs themselves (in place).
    ``traced`` launches the way ``torch.compile`` traces (inside an operator).
    """
    if (residual is None) != (residual_out is None):
        raise ValueError("launch_rms_norm: pass both residual and residual_out, or neither")
    n_cols = x.shape[-1]
    if traced:  # the width is a constexpr: a symbolic one is specialized (one graph per width)
        n_cols = int(n_cols)
    n_rows = x.numel() // n_cols if n_cols else 0
    if n_rows == 0:
        return
    config = ROW_TABLE.config(n_cols)
    stat_cols = n_cols if variance_size is None else variance_size
    has_weight = weight is not None
    if config.looped:
        launcher = LOOPED_LAUNCHER
        (launcher.traced if traced else launcher.launch)(
            (n_rows,),
            x,
            row_stride(x),
            residual,
            0 if residual is None else row_stride(residual),
            weight,
            out,
            row_stride(out),
            residual_out,
            0 if residual_out is None else row_stride(residual_out),
            epsilon,
            n_cols,
            stat_cols,
            config.block,
            residual is not None,
            has_weight,
            num_warps=config.num_warps,
        )
    elif residual is None or residual_out is None:
        launcher = ROWS_LAUNCHER
        (launcher.traced if traced else launcher.launch)(
            config.grid(n_rows),
            x,
            row_stride(x),
            weight,
            out,
            n_rows,
            epsilon,
            n_cols,
            stat_cols,
            config.block,
            config.rows,
            has_weight,
            num_warps=config.num_warps,
        )
    else:
        launcher = FUSED_ROWS_LAUNCHER
        (launcher.traced if traced else launcher.launch)(
            config.grid(n_rows),
            x,
            row_stride(x),
            residual,
            row_stride(residual),
            weight,
            out,
            row_stride(out),
            residual_out,
            row_stride(residual_out),
            n_rows,
            epsilon,
            n_cols,
            stat_cols,
            config.block,
            config.rows,
            has_weight,
            num_warps=config.num_warps,
        )


# -- operators for torch.compile ----------------------------------------------------------------


def _new_like(x: Tensor) -> Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _rms_norm_op(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    out = _new_like(x)
    launch_rms_norm(x, None, weight, out, None, epsilon, variance_size, traced=True)
    return out


def _fused_add_rms_norm_op(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    out, residual_out = _new_like(x), _new_like(x)
    launch_rms_norm(x, x_residual, weight, out, residual_out, epsilon, variance_size, traced=True)
    return out, residual_out


def _fused_add_rms_norm_inplace_op(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> None:
    launch_rms_norm(x, x_residual, weight, x, x_residual, epsilon, variance_size, traced=True)


def _writes_its_arguments_only(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> None:
    """Fake kernel of the in-place operator: it returns nothing and allocates nothing."""


RMS_NORM_OP = define_kernel_op("ir_rocm::rms_norm", _rms_norm_op, fake=ops.rms_norm.native_fn)
FUSED_ADD_RMS_NORM_OP = define_kernel_op(
    "ir_rocm::fused_add_rms_norm",
    _fused_add_rms_norm_op,
    fake=ops.fused_add_rms_norm.native_fn,
)
FUSED_ADD_RMS_NORM_INPLACE_OP = define_kernel_op(
    "ir_rocm::fused_add_rms_norm_inplace",
    _fused_add_rms_norm_inplace_op,
    mutates_args=("x", "x_residual"),
    fake=_writes_its_arguments_only,
)


# -- providers ------------------------------------------------------------------------------------


def rms_norm_rocm(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    if tracing():
        traced: Tensor = RMS_NORM_OP(x, weight, epsilon, variance_size)
        return traced
    out = _new_like(x)
    launch_rms_norm(x, None, weight, out, None, epsilon, variance_size, traced=False)
    return out


def fused_add_rms_norm_rocm(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Out of place: what the functional overload runs (no copies of the inputs)."""
    if tracing():
        out, residual_out = FUSED_ADD_RMS_NORM_OP(x, x_residual, weight, epsilon, variance_size)
        return out, residual_out
    out, residual_out = _new_like(x), _new_like(x)
    launch_rms_norm(x, x_residual, weight, out, residual_out, epsilon, variance_size, False)
    return out, residual_out


def fused_add_rms_norm_rocm_inplace(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """In place (``maybe_inplace``): ``out`` into ``x``, the sum into ``x_residual``.

    The same bytes as the out-of-place kernel and no new buffers. When ``x`` and ``x_residual``
    are one buffer, which cannot hold both results, it computes out of place (``maybe_inplace``
    allows that).
    """
    if tracing():
        FUSED_ADD_RMS_NORM_INPLACE_OP(x, x_residual, weight, epsilon, variance_size)
        return x, x_residual
    if x.data_ptr() == x_residual.data_ptr():
        return fused_add_rms_norm_rocm(x, x_residual, weight, epsilon, variance_size)
    launch_rms_norm(x, x_residual, weight, x, x_residual, epsilon, variance_size, traced=False)
    return x, x_residual


ops.rms_norm.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=rms_norm_supports_args,
)(rms_norm_rocm)

ops.fused_add_rms_norm.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=fused_add_rms_norm_supports_args,
    inplace=True,
    functional=fused_add_rms_norm_rocm,
)(fused_add_rms_norm_rocm_inplace)
