"""The ``cuda`` providers of ``rms_norm`` and ``fused_add_rms_norm``: Triton kernels and their
registration.

Semantics are those of ``ir_op.ops.rms_norm`` / ``fused_add_rms_norm``: the (residual) sum and
the mean of squares are float32; the normalized row is rounded to the output dtype, then
multiplied by the weight and rounded again. The weight product is taken in float32 on the rounded
value, which gives the same result as a product in the weight's dtype (the weight has the
activation's dtype) and avoids the NaNs that Triton's interpreter produced for a bfloat16 x
bfloat16 product.

Two shapes of kernel, chosen by :data:`ROW_TABLE` (``ir_op.triton``'s table for H100):

- ``rms_norm_rows_kernel`` and ``fused_add_rms_norm_rows_kernel`` (one body,
  ``rms_norm_rows``): a ``[ROWS, BLOCK]`` tile, each row read once into registers (rows up to
  8192 wide; short rows are packed several per program);
- ``rms_norm_looped_kernel``: one program per row, looping over ``BLOCK``-wide chunks: a first
  pass accumulates the statistic, a second re-reads the inputs (mostly from L2), normalizes and
  writes. Nothing is written before the second pass.

Row widths are constexprs (one compile per width, which a model fixes): see the kernels' note.

Outputs may alias inputs in both (the in-place provider of ``fused_add_rms_norm``): every element
is read before the program that owns its row writes it.

Eager calls launch through :class:`~ir_op.triton.KernelLauncher` (a few microseconds of host
time); while compiling or tracing the providers call the ``torch.ops.ir_cuda`` operators defined
here instead, which ``torch.compile`` sees through (:func:`ir_op.triton.define_kernel_op`).

Arguments the kernels take (``supports_args``): fp16, bf16 or fp32 activations on the platform's
device in row layout (last dimension contiguous, any row stride); a weight that is ``None`` or a
contiguous ``[hidden]`` vector of the same dtype; any valid ``variance_size``. For
``fused_add_rms_norm`` the residual matches ``x`` in shape and dtype, and rows do not overlap
(the in-place provider writes them).
"""

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda.pdl import PDL, pdl_enabled, wait_for_previous_kernel
from ir_op import ops
from ir_op.triton import (
    NVIDIA_ROW_TABLE,
    BoundLauncher,
    KernelLauncher,
    RowTable,
    define_kernel_op,
    tracing,
)
from ir_op.triton.rows import (
    FLOAT_DTYPES,
    has_row_layout,
    on_platform_device,
    row_stride,
    rows_are_disjoint,
)

# -- Triton kernels -------------------------------------------------------------------------------
#
# The row width (N_COLS) and the statistic's width (VARIANCE_SIZE, equal to N_COLS unless
# variance_size is given) are constexprs: a model has one or two widths, so that costs a few
# compiles, and every runtime argument costs host time in each launch (it is part of the
# specialization key). Loops over chunks need a constexpr count anyway: loops with a runtime
# bound fail in Triton 3.6's interpreter under NumPy 2.4.


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
    USE_PDL: tl.constexpr,
):
    """Normalize the rows of this program's ``[ROWS, BLOCK]`` tile (both row kernels)."""
    if USE_PDL:
        wait_for_previous_kernel()
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    col_mask = cols < N_COLS
    mask = (rows < n_rows)[:, None] & col_mask[None, :]
    rows = rows.to(tl.int64)[:, None]  # row * stride can pass 2**31 elements
    cols_2d = cols[None, :]

    # Every load is issued before the reduction, the weight's too: its latency overlaps the
    # others' instead of following the reduction (what a decode-sized launch waits on).
    # Activations are read once: first out of L2. The weight is read by every row: last.
    x = tl.load(
        x_ptr + rows * x_row_stride + cols_2d, mask=mask, other=0.0, eviction_policy="evict_first"
    )
    if HAS_RESIDUAL:
        residual = tl.load(
            residual_ptr + rows * residual_row_stride + cols_2d,
            mask=mask,
            other=0.0,
            eviction_policy="evict_first",
        )
    if HAS_WEIGHT:
        weight = tl.load(weight_ptr + cols, mask=col_mask, other=0.0, eviction_policy="evict_last")
    x = x.to(tl.float32)
    if HAS_RESIDUAL:
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
        out = (out.to(tl.float32) * weight.to(tl.float32)[None, :]).to(out_ptr.dtype.element_ty)
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
    USE_PDL: tl.constexpr,
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
        USE_PDL,
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
    USE_PDL: tl.constexpr,
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
        USE_PDL,
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
    USE_PDL: tl.constexpr,
):
    """One row per program, in ``BLOCK``-wide chunks; the outputs may be the inputs."""
    if USE_PDL:
        wait_for_previous_kernel()
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_row_stride
    out_row = out_ptr + row * out_row_stride

    squares = tl.zeros([BLOCK], dtype=tl.float32)
    for chunk in range((VARIANCE_SIZE + BLOCK - 1) // BLOCK):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < VARIANCE_SIZE
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_RESIDUAL:
            residual = tl.load(
                residual_ptr + row * residual_row_stride + cols, mask=mask, other=0.0
            )
            x = x + residual.to(tl.float32)
        squares += x * x
    rstd = tl.rsqrt(tl.sum(squares, axis=0) / VARIANCE_SIZE + epsilon)

    # The second pass reads the row again (from L2, where the first pass left it), for the last
    # time.
    for chunk in range((N_COLS + BLOCK - 1) // BLOCK):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < N_COLS
        x = tl.load(x_row + cols, mask=mask, other=0.0, eviction_policy="evict_first")
        x = x.to(tl.float32)
        if HAS_RESIDUAL:
            residual = tl.load(
                residual_ptr + row * residual_row_stride + cols,
                mask=mask,
                other=0.0,
                eviction_policy="evict_first",
            )
            x = x + residual.to(tl.float32)
            tl.store(
                residual_out_ptr + row * residual_out_row_stride + cols,
                x.to(residual_out_ptr.dtype.element_ty),
                mask=mask,
            )
        out = (x * rstd).to(out_ptr.dtype.element_ty)
        if HAS_WEIGHT:
            weight = tl.load(
                weight_ptr + cols, mask=mask, other=0.0, eviction_policy="evict_last"
            ).to(tl.float32)
            out = (out.to(tl.float32) * weight).to(out_ptr.dtype.element_ty)
        tl.store(out_row + cols, out, mask=mask)


# -- launching ------------------------------------------------------------------------------------

ROW_TABLE: RowTable = NVIDIA_ROW_TABLE
"""Block and warp choices (a module global, so a benchmark can try another table)."""

ROWS_LAUNCHER = KernelLauncher(rms_norm_rows_kernel)
FUSED_ROWS_LAUNCHER = KernelLauncher(fused_add_rms_norm_rows_kernel)
LOOPED_LAUNCHER = KernelLauncher(rms_norm_looped_kernel)
_BOTH_OR_NEITHER = "launch_rms_norm: pass both residual and residual_out, or neither"

_Plan = tuple[RowTable, int, BoundLauncher]
"""(the table it was made with, rows per program (0: looped kernel), the bound launch)."""

_PLANS: dict[tuple[int, int | None, bool, bool, bool, bool], _Plan] = {}


def _plan(
    n_cols: int,
    variance_size: int | None,
    has_weight: bool,
    has_residual: bool,
    pdl: bool,
    decode: bool,
) -> _Plan:
    """Kernel, constexprs and options for one row width, set of options and launch size (made
    once; ``decode``: a launch of at most ``ROW_TABLE.decode_rows`` rows)."""
    key = (n_cols, variance_size, has_weight, has_residual, pdl, decode)
    table = ROW_TABLE
    config = table.config(n_cols, 1 if decode else None)
    stat_cols = n_cols if variance_size is None else variance_size
    options = {"num_warps": config.num_warps, "launch_pdl": pdl}
    if config.looped:
        bound = LOOPED_LAUNCHER.bind(
            n_cols, stat_cols, config.block, has_residual, has_weight, pdl, **options
        )
        plan: _Plan = (table, 0, bound)
    else:
        launcher = FUSED_ROWS_LAUNCHER if has_residual else ROWS_LAUNCHER
        bound = launcher.bind(
            n_cols, stat_cols, config.block, config.rows, has_weight, pdl, **options
        )
        plan = (table, config.rows, bound)
    _PLANS[key] = plan
    return plan


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
    ``traced`` launches the way ``torch.compile`` traces (inside an operator), without PDL.

    On the eager path of every call: each line here costs host time (see the README).
    """
    shape = x.shape
    n_cols = shape[-1]
    if traced:  # widths are constexprs: symbolic ones are specialized (one graph per width)
        n_cols = int(n_cols)
        variance_size = None if variance_size is None else int(variance_size)
    two_d = len(shape) == 2
    n_rows = shape[0] if two_d else (x.numel() // n_cols if n_cols else 0)
    if n_rows == 0 or n_cols == 0:
        return
    if (residual is None) != (residual_out is None):
        raise ValueError(_BOTH_OR_NEITHER)
    pdl = False if traced else PDL.enabled
    if pdl is None:
        pdl = pdl_enabled()
    decode = not traced and n_rows <= ROW_TABLE.decode_rows  # (a traced count may be symbolic)
    has_weight, has_residual = weight is not None, residual is not None
    plan = _PLANS.get((n_cols, variance_size, has_weight, has_residual, pdl, decode))
    if plan is None or plan[0] is not ROW_TABLE:
        plan = _plan(n_cols, variance_size, has_weight, has_residual, pdl, decode)
    _, rows, bound = plan
    launch = bound.traced if traced else bound.launch
    x_stride = x.stride()[0] if two_d else row_stride(x)
    if residual is None:
        if rows:
            launch(((n_rows + rows - 1) // rows,), x, x_stride, weight, out, n_rows, epsilon)
        else:
            launch((n_rows,), x, x_stride, None, 0, weight, out, n_cols, None, 0, epsilon)
        return
    # The outputs are the inputs (in place) or new contiguous tensors.
    residual_stride = row_stride(residual)
    out_stride = x_stride if out is x else row_stride(out)
    residual_out_stride = (
        residual_stride if residual_out is residual else row_stride(residual_out)  # type: ignore[arg-type]
    )
    if rows:
        launch(
            ((n_rows + rows - 1) // rows,),
            x,
            x_stride,
            residual,
            residual_stride,
            weight,
            out,
            out_stride,
            residual_out,
            residual_out_stride,
            n_rows,
            epsilon,
        )
    else:
        launch(
            (n_rows,),
            x,
            x_stride,
            residual,
            residual_stride,
            weight,
            out,
            out_stride,
            residual_out,
            residual_out_stride,
            epsilon,
        )


# -- supports_args ------------------------------------------------------------------------------
#
# On the dispatch path of every call, so written out: each helper call costs host time. The
# common cases (no variance_size, a weight) are tested inline.


def _weight_ok(weight: Tensor, x: Tensor) -> bool:
    """A contiguous ``[hidden]`` vector of ``x``'s dtype on ``x``'s device."""
    return (
        weight.dtype == x.dtype
        and weight.dim() == 1
        and bool(weight.numel() == x.shape[-1])
        and weight.is_contiguous()
        and weight.get_device() == x.get_device()
    )


def _writable_rows(t: Tensor) -> bool:
    """Row layout with rows that do not overlap (a contiguous tensor always has both)."""
    return has_row_layout(t) and rows_are_disjoint(t)


def _variance_size_ok(variance_size: int | None, x: Tensor) -> bool:
    return type(variance_size) is int and bool(0 < variance_size <= x.shape[-1])


def rms_norm_supports_args(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    return (
        x.dtype in FLOAT_DTYPES
        and on_platform_device(x)
        and (x.is_contiguous() or has_row_layout(x))
        and (weight is None or _weight_ok(weight, x))
        and (variance_size is None or _variance_size_ok(variance_size, x))
    )


def fused_add_rms_norm_supports_args(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> bool:
    return (
        x.dtype in FLOAT_DTYPES
        and x_residual.dtype == x.dtype
        and on_platform_device(x)
        and x_residual.get_device() == x.get_device()
        and bool(x_residual.shape == x.shape)
        and (x.is_contiguous() or _writable_rows(x))
        and (x_residual.is_contiguous() or _writable_rows(x_residual))
        and (weight is None or _weight_ok(weight, x))
        and (variance_size is None or _variance_size_ok(variance_size, x))
    )


# -- operators for torch.compile ----------------------------------------------------------------


def _rms_norm_op(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    launch_rms_norm(x, None, weight, out, None, epsilon, variance_size, traced=True)
    return out


def _fused_add_rms_norm_op(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    residual_out = torch.empty_like(x, memory_format=torch.contiguous_format)
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


RMS_NORM_OP = define_kernel_op("ir_cuda::rms_norm", _rms_norm_op, fake=ops.rms_norm.native_fn)
FUSED_ADD_RMS_NORM_OP = define_kernel_op(
    "ir_cuda::fused_add_rms_norm",
    _fused_add_rms_norm_op,
    fake=ops.fused_add_rms_norm.native_fn,
)
FUSED_ADD_RMS_NORM_INPLACE_OP = define_kernel_op(
    "ir_cuda::fused_add_rms_norm_inplace",
    _fused_add_rms_norm_inplace_op,
    mutates_args=("x", "x_residual"),
    fake=_writes_its_arguments_only,
)


# -- providers ------------------------------------------------------------------------------------


def rms_norm_cuda(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    if tracing():
        out: Tensor = RMS_NORM_OP(x, weight, epsilon, variance_size)
        return out
    # empty_like keeps a contiguous tensor's layout; its memory_format argument costs host time
    out = (
        torch.empty_like(x)
        if x.is_contiguous()
        else torch.empty_like(x, memory_format=torch.contiguous_format)
    )
    launch_rms_norm(x, None, weight, out, None, epsilon, variance_size, False)
    return out


def fused_add_rms_norm_cuda(
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
    if x.is_contiguous():
        out, residual_out = torch.empty_like(x), torch.empty_like(x)
    else:
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        residual_out = torch.empty_like(x, memory_format=torch.contiguous_format)
    launch_rms_norm(x, x_residual, weight, out, residual_out, epsilon, variance_size, False)
    return out, residual_out


def fused_add_rms_norm_cuda_inplace(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """In place (``maybe_inplace``): ``out`` into ``x``, the sum into ``x_residual``.

    The same bytes as the out-of-place kernel, with no new buffers (the functional fallback for
    an in-place impl would first copy both inputs: twice the traffic). When ``x`` and
    ``x_residual`` are one buffer, which cannot hold both results, it computes out of place
    (``maybe_inplace`` allows that).
    """
    if tracing():
        FUSED_ADD_RMS_NORM_INPLACE_OP(x, x_residual, weight, epsilon, variance_size)
        return x, x_residual
    if x.data_ptr() == x_residual.data_ptr():
        return fused_add_rms_norm_cuda(x, x_residual, weight, epsilon, variance_size)
    launch_rms_norm(x, x_residual, weight, x, x_residual, epsilon, variance_size, False)
    return x, x_residual


ops.rms_norm.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=rms_norm_supports_args,
)(rms_norm_cuda)

ops.fused_add_rms_norm.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=fused_add_rms_norm_supports_args,
    inplace=True,
    functional=fused_add_rms_norm_cuda,
)(fused_add_rms_norm_cuda_inplace)
