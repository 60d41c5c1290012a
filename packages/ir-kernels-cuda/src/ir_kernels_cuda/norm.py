"""The ``cuda`` providers of ``rms_norm`` and ``fused_add_rms_norm``: Triton kernels and their
registration.

Semantics are those of ``ir_op.ops.rms_norm`` / ``fused_add_rms_norm``: the (residual) sum and
the mean of squares are float32; the normalized row is rounded to the output dtype, then
multiplied by the weight and rounded again. The weight product is taken in float32 on the rounded
value, which gives the same result as a product in the weight's dtype (the weight has the
activation's dtype) and avoids the NaNs that Triton's interpreter produced for a bfloat16 x
bfloat16 product.

Two shapes of kernel, chosen by :data:`ROW_TABLE` (``ir_op.triton``'s table for H100):

- ``rms_norm_rows_kernel``: a ``[ROWS, BLOCK]`` tile, each row read once into registers (rows up
  to 8192 wide; short rows are packed several per program);
- ``rms_norm_looped_kernel``: one program per row, looping over ``BLOCK``-wide chunks: a first
  pass accumulates the statistic, a second re-reads the inputs (mostly from L2), normalizes and
  writes. Nothing is written before the second pass. The chunk counts are constexprs (one compile
  per row width, which a model fixes): loops with a runtime bound fail in Triton 3.6's
  interpreter under NumPy 2.4.

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
from ir_op import ops
from ir_op.triton import NVIDIA_ROW_TABLE, KernelLauncher, RowTable, define_kernel_op, tracing
from ir_op.triton.rows import (
    FLOAT_DTYPES,
    has_row_layout,
    is_row_vector,
    on_platform_device,
    row_stride,
    rows_are_disjoint,
)

# -- Triton kernels -------------------------------------------------------------------------------


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def rms_norm_rows_kernel(  # type: ignore[no-untyped-def]
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
    n_cols,
    variance_size,
    epsilon,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    PARTIAL_VARIANCE: tl.constexpr,
):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    col_mask = cols < n_cols
    mask = (rows < n_rows)[:, None] & col_mask[None, :]
    rows = rows.to(tl.int64)[:, None]  # row * stride can pass 2**31 elements
    cols_2d = cols[None, :]

    # Activations are read once: first out of L2. The weight is read by every row: last.
    x = tl.load(
        x_ptr + rows * x_row_stride + cols_2d, mask=mask, other=0.0, eviction_policy="evict_first"
    ).to(tl.float32)
    if HAS_RESIDUAL:
        residual = tl.load(
            residual_ptr + rows * residual_row_stride + cols_2d,
            mask=mask,
            other=0.0,
            eviction_policy="evict_first",
        )
        x = x + residual.to(tl.float32)
        tl.store(
            residual_out_ptr + rows * residual_out_row_stride + cols_2d,
            x.to(residual_out_ptr.dtype.element_ty),
            mask=mask,
        )
    if PARTIAL_VARIANCE:
        sample = tl.where(cols_2d < variance_size, x, 0.0)
        mean_square = tl.sum(sample * sample, axis=1) / variance_size
    else:
        mean_square = tl.sum(x * x, axis=1) / n_cols
    rstd = tl.rsqrt(mean_square + epsilon)
    out = (x * rstd[:, None]).to(out_ptr.dtype.element_ty)
    if HAS_WEIGHT:
        weight = tl.load(
            weight_ptr + cols, mask=col_mask, other=0.0, eviction_policy="evict_last"
        ).to(tl.float32)
        out = (out.to(tl.float32) * weight[None, :]).to(out_ptr.dtype.element_ty)
    tl.store(out_ptr + rows * out_row_stride + cols_2d, out, mask=mask)


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
    n_cols,
    variance_size,
    epsilon,
    BLOCK: tl.constexpr,
    CHUNKS: tl.constexpr,
    STAT_CHUNKS: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    PARTIAL_VARIANCE: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_row_stride
    out_row = out_ptr + row * out_row_stride
    stat_cols = variance_size if PARTIAL_VARIANCE else n_cols

    squares = tl.zeros([BLOCK], dtype=tl.float32)
    for chunk in range(STAT_CHUNKS):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < stat_cols
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_RESIDUAL:
            residual = tl.load(
                residual_ptr + row * residual_row_stride + cols, mask=mask, other=0.0
            )
            x = x + residual.to(tl.float32)
        squares += x * x
    rstd = tl.rsqrt(tl.sum(squares, axis=0) / stat_cols + epsilon)

    # The second pass reads the row again (from L2, where the first pass left it), for the last
    # time.
    for chunk in range(CHUNKS):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < n_cols
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

    All tensors are in row layout with ``x``'s shape; outputs may be the inputs themselves.
    ``traced`` launches the way ``torch.compile`` traces (inside an operator).
    """
    n_cols = x.shape[-1]
    n_rows = x.numel() // n_cols if n_cols else 0
    if n_rows == 0:
        return
    config = ROW_TABLE.config(n_cols)
    has_residual = residual is not None
    args = (
        x,
        row_stride(x),
        residual,
        row_stride(residual) if residual is not None else 0,
        weight,
        out,
        row_stride(out),
        residual_out,
        row_stride(residual_out) if residual_out is not None else 0,
    )
    stat_cols = n_cols if variance_size is None else variance_size
    if config.looped:
        launcher = LOOPED_LAUNCHER
        launch = launcher.traced if traced else launcher.launch
        launch(
            (n_rows,),
            *args,
            n_cols,
            stat_cols,
            epsilon,
            config.block,
            (n_cols + config.block - 1) // config.block,
            (stat_cols + config.block - 1) // config.block,
            has_residual,
            weight is not None,
            variance_size is not None,
            num_warps=config.num_warps,
        )
    else:
        launcher = ROWS_LAUNCHER
        launch = launcher.traced if traced else launcher.launch
        rows = config.rows
        launch(
            ((n_rows + rows - 1) // rows,),
            *args,
            n_rows,
            n_cols,
            stat_cols,
            epsilon,
            config.block,
            rows,
            has_residual,
            weight is not None,
            variance_size is not None,
            num_warps=config.num_warps,
        )


# -- supports_args ------------------------------------------------------------------------------


def _weight_ok(weight: Tensor | None, x: Tensor) -> bool:
    return weight is None or (
        is_row_vector(weight, x.shape[-1], x.dtype) and weight.get_device() == x.get_device()
    )


def _variance_size_ok(variance_size: int | None, x: Tensor) -> bool:
    return variance_size is None or (
        type(variance_size) is int and bool(0 < variance_size <= x.shape[-1])
    )


def rms_norm_supports_args(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    return (
        x.dtype in FLOAT_DTYPES
        and on_platform_device(x)
        and has_row_layout(x)
        and _weight_ok(weight, x)
        and _variance_size_ok(variance_size, x)
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
        and has_row_layout(x)
        and has_row_layout(x_residual)
        and rows_are_disjoint(x)
        and rows_are_disjoint(x_residual)
        and _weight_ok(weight, x)
        and _variance_size_ok(variance_size, x)
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
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    launch_rms_norm(x, None, weight, out, None, epsilon, variance_size, traced=False)
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
    launch_rms_norm(x, x_residual, weight, x, x_residual, epsilon, variance_size, traced=False)
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
