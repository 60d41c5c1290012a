"""The ``cuda`` providers of ``rms_norm_static_fp8_quant`` and
``fused_add_rms_norm_static_fp8_quant``: RMS normalization (after the residual add) fused with
the static fp8 quantization of its output, in one pass. Triton kernels and their registration.

Semantics are those of the compositions in ``ir_op.ops.composite``, intermediate roundings
included: the (residual) sum and the mean of squares are float32, ``residual_out`` is the sum
rounded to ``x``'s dtype; the normalized row is rounded to ``x``'s dtype, multiplied by the
weight in float32 and rounded again (what ``rms_norm`` returns); that value is multiplied by the
float32 reciprocal of the scale (rounded once per program: within 1.5 float32 ulps of the
division, so at most one fp8 step away and almost always equal), saturated to ``±448`` with NaN
kept and cast to ``float8_e4m3fn`` (:mod:`ir_kernels_cuda._fp8`).

The unfused pair reads ``x`` twice and writes the normalized row in ``x``'s dtype in between
(7 bytes per bf16 element, 11 with the residual); these kernels read ``x`` (and the residual) once
and write one fp8 byte (and the sum): 3 bytes per element, 7 with the residual.

Kernel shapes follow :mod:`ir_kernels_cuda.norm` and its :data:`ROW_TABLE`:

- ``rms_norm_quant_rows_kernel``: a ``[ROWS, BLOCK]`` tile, each row read once into registers
  (rows up to 8192 wide; short rows packed several per program);
- ``rms_norm_quant_looped_kernel``: one program per wider row, a first pass over
  ``BLOCK``-wide chunks for the statistic, a second (mostly from L2) that writes.

Arguments the kernels take (``supports_args``): fp16, bf16 or fp32 activations on the platform's
device in row layout (last dimension contiguous, any row stride); a weight that is ``None`` or a
contiguous ``[hidden]`` vector of ``x``'s dtype; a one-element float32 scale on ``x``'s device;
``fp8_dtype=torch.float8_e4m3fn``; a residual of ``x``'s shape and dtype.
"""

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_kernels_cuda._fp8 import FP8_DTYPE, FP8_MAX, clamp_for_fp8
from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda.pdl import PDL, pdl_enabled, wait_for_previous_kernel
from ir_op import ops
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
    is_row_vector,
    on_platform_device,
    row_stride,
)
from ir_triton.supports import is_static_scale, on_device_of

# -- Triton kernels -------------------------------------------------------------------------------


@triton.jit  # type: ignore[untyped-decorator]
def normalize_and_quantize(  # type: ignore[no-untyped-def]
    x,
    rstd,
    weight,
    inverse_scale,
    DTYPE: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    FP8_MAX: tl.constexpr,
):
    """``rms_norm``'s output (rounded to ``DTYPE``, weighted in float32, rounded again), then
    divided by the scale and saturated, ready for the cast to fp8."""
    out = (x * rstd).to(DTYPE)
    if HAS_WEIGHT:
        out = (out.to(tl.float32) * weight).to(DTYPE)
    return clamp_for_fp8(out.to(tl.float32) * inverse_scale, FP8_MAX)


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def rms_norm_quant_rows_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    residual_ptr,
    residual_row_stride,
    weight_ptr,
    scale_ptr,
    out_ptr,
    residual_out_ptr,
    n_rows,
    epsilon,
    N_COLS: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    FP8_MAX: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """Normalize and quantize the rows of a ``[ROWS, BLOCK]`` tile into the contiguous fp8
    ``out`` (and the sum into the contiguous ``residual_out``)."""
    if USE_PDL:
        wait_for_previous_kernel()
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    col_mask = cols < N_COLS
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
            residual_out_ptr + rows * N_COLS + cols_2d,
            x.to(residual_out_ptr.dtype.element_ty),
            mask=mask,
        )
    rstd = tl.rsqrt(tl.sum(x * x, axis=1) / N_COLS + epsilon)
    weight = None
    if HAS_WEIGHT:
        weight = tl.load(
            weight_ptr + cols, mask=col_mask, other=0.0, eviction_policy="evict_last"
        ).to(tl.float32)[None, :]
    inverse_scale = tl.math.div_rn(1.0, tl.load(scale_ptr))
    q = normalize_and_quantize(
        x, rstd[:, None], weight, inverse_scale, x_ptr.dtype.element_ty, HAS_WEIGHT, FP8_MAX
    )
    tl.store(out_ptr + rows * N_COLS + cols_2d, q.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit  # type: ignore[untyped-decorator]
def rms_norm_quant_looped_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    residual_ptr,
    residual_row_stride,
    weight_ptr,
    scale_ptr,
    out_ptr,
    residual_out_ptr,
    epsilon,
    N_COLS: tl.constexpr,
    BLOCK: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    FP8_MAX: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """One row per program, in ``BLOCK``-wide chunks: the statistic, then the outputs."""
    if USE_PDL:
        wait_for_previous_kernel()
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_row_stride
    chunks: tl.constexpr = (N_COLS + BLOCK - 1) // BLOCK

    squares = tl.zeros([BLOCK], dtype=tl.float32)
    for chunk in range(chunks):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < N_COLS
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_RESIDUAL:
            residual = tl.load(
                residual_ptr + row * residual_row_stride + cols, mask=mask, other=0.0
            )
            x = x + residual.to(tl.float32)
        squares += x * x
    rstd = tl.rsqrt(tl.sum(squares, axis=0) / N_COLS + epsilon)
    inverse_scale = tl.math.div_rn(1.0, tl.load(scale_ptr))

    # The second pass reads the row again (from L2, where the first pass left it), for the last
    # time.
    for chunk in range(chunks):
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
                residual_out_ptr + row * N_COLS + cols,
                x.to(residual_out_ptr.dtype.element_ty),
                mask=mask,
            )
        weight = None
        if HAS_WEIGHT:
            weight = tl.load(
                weight_ptr + cols, mask=mask, other=0.0, eviction_policy="evict_last"
            ).to(tl.float32)
        q = normalize_and_quantize(
            x, rstd, weight, inverse_scale, x_ptr.dtype.element_ty, HAS_WEIGHT, FP8_MAX
        )
        tl.store(out_ptr + row * N_COLS + cols, q.to(out_ptr.dtype.element_ty), mask=mask)


# -- launching ------------------------------------------------------------------------------------

ROW_TABLE: RowTable = NVIDIA_ROW_TABLE
"""Block and warp choices (a module global, so a benchmark can try another table)."""

ROWS_LAUNCHER = KernelLauncher(rms_norm_quant_rows_kernel)
LOOPED_LAUNCHER = KernelLauncher(rms_norm_quant_looped_kernel)

_Plan = tuple[RowTable, int, BoundLauncher]
"""(the table it was made with, rows per program (0: looped kernel), the bound launch)."""

_PLANS: dict[tuple[int, bool, bool, bool, bool], _Plan] = {}


def _plan(n_cols: int, has_residual: bool, has_weight: bool, pdl: bool, decode: bool) -> _Plan:
    """Kernel, constexprs and options for one row width, set of options and launch size (made
    once; ``decode``: a launch of at most ``ROW_TABLE.decode_rows`` rows)."""
    table = ROW_TABLE
    config = table.config(n_cols, 1 if decode else None)
    options = {"num_warps": config.num_warps, "launch_pdl": pdl}
    if config.looped:
        bound = LOOPED_LAUNCHER.bind(
            n_cols, config.block, has_residual, has_weight, FP8_MAX, pdl, **options
        )
        plan: _Plan = (table, 0, bound)
    else:
        bound = ROWS_LAUNCHER.bind(
            n_cols, config.block, config.rows, has_residual, has_weight, FP8_MAX, pdl, **options
        )
        plan = (table, config.rows, bound)
    _PLANS[n_cols, has_residual, has_weight, pdl, decode] = plan
    return plan


def launch_rms_norm_quant(
    x: Tensor,
    residual: Tensor | None,
    weight: Tensor | None,
    scale: Tensor,
    out: Tensor,
    residual_out: Tensor | None,
    epsilon: float,
    traced: bool,
) -> None:
    """Write the fp8 ``rms_norm(x [+ residual])`` into ``out`` (and the sum into
    ``residual_out``): both new and contiguous, with ``x``'s shape; ``x`` and ``residual`` in row
    layout. ``traced`` launches the way ``torch.compile`` traces (inside an operator), without
    PDL."""
    n_cols = x.shape[-1]
    if traced:  # the width is a constexpr: a symbolic one is specialized (one graph per width)
        n_cols = int(n_cols)
    n_rows = x.numel() // n_cols if n_cols else 0
    if n_rows == 0:
        return
    pdl = False if traced else PDL.enabled
    if pdl is None:
        pdl = pdl_enabled()
    decode = not traced and n_rows <= ROW_TABLE.decode_rows  # (a traced count may be symbolic)
    has_residual, has_weight = residual is not None, weight is not None
    plan = _PLANS.get((n_cols, has_residual, has_weight, pdl, decode))
    if plan is None or plan[0] is not ROW_TABLE:
        plan = _plan(n_cols, has_residual, has_weight, pdl, decode)
    _, rows, bound = plan
    launch = bound.traced if traced else bound.launch
    residual_stride = row_stride(residual) if residual is not None else 0
    if rows:
        launch(
            ((n_rows + rows - 1) // rows,),
            x,
            row_stride(x),
            residual,
            residual_stride,
            weight,
            scale,
            out,
            residual_out,
            n_rows,
            epsilon,
        )
    else:
        launch(
            (n_rows,),
            x,
            row_stride(x),
            residual,
            residual_stride,
            weight,
            scale,
            out,
            residual_out,
            epsilon,
        )


# -- supports_args ------------------------------------------------------------------------------


def rms_norm_static_fp8_quant_supports_args(
    x: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = FP8_DTYPE,
) -> bool:
    try:
        return (
            fp8_dtype == FP8_DTYPE
            and x.dtype in FLOAT_DTYPES
            and on_platform_device(x)
            and has_row_layout(x)
            and (
                weight is None
                or (is_row_vector(weight, x.shape[-1], x.dtype) and on_device_of(weight, x))
            )
            and is_static_scale(scale, x)
        )
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


def fused_add_rms_norm_static_fp8_quant_supports_args(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = FP8_DTYPE,
) -> bool:
    try:
        return (
            x_residual.dtype == x.dtype
            and on_device_of(x_residual, x)
            and bool(x_residual.shape == x.shape)
            and has_row_layout(x_residual)
            and rms_norm_static_fp8_quant_supports_args(x, weight, epsilon, scale, fp8_dtype)
        )
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


# -- operators for torch.compile ----------------------------------------------------------------


def _rms_norm_static_fp8_quant_op(
    x: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = FP8_DTYPE,
) -> Tensor:
    out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
    launch_rms_norm_quant(x, None, weight, scale, out, None, epsilon, traced=True)
    return out


def _fused_add_rms_norm_static_fp8_quant_op(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = FP8_DTYPE,
) -> tuple[Tensor, Tensor]:
    out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
    residual_out = torch.empty_like(x, memory_format=torch.contiguous_format)
    launch_rms_norm_quant(x, x_residual, weight, scale, out, residual_out, epsilon, traced=True)
    return out, residual_out


RMS_NORM_STATIC_FP8_QUANT_OP = define_kernel_op(
    "ir_cuda::rms_norm_static_fp8_quant",
    _rms_norm_static_fp8_quant_op,
    fake=ops.rms_norm_static_fp8_quant.native_fn,
)
FUSED_ADD_RMS_NORM_STATIC_FP8_QUANT_OP = define_kernel_op(
    "ir_cuda::fused_add_rms_norm_static_fp8_quant",
    _fused_add_rms_norm_static_fp8_quant_op,
    fake=ops.fused_add_rms_norm_static_fp8_quant.native_fn,
)


# -- providers ------------------------------------------------------------------------------------


def rms_norm_static_fp8_quant_cuda(
    x: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = FP8_DTYPE,
) -> Tensor:
    if tracing():
        traced: Tensor = RMS_NORM_STATIC_FP8_QUANT_OP(x, weight, epsilon, scale, fp8_dtype)
        return traced
    out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
    launch_rms_norm_quant(x, None, weight, scale, out, None, epsilon, traced=False)
    return out


def fused_add_rms_norm_static_fp8_quant_cuda(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    scale: Tensor,
    fp8_dtype: torch.dtype = FP8_DTYPE,
) -> tuple[Tensor, Tensor]:
    if tracing():
        out, residual_out = FUSED_ADD_RMS_NORM_STATIC_FP8_QUANT_OP(
            x, x_residual, weight, epsilon, scale, fp8_dtype
        )
        return out, residual_out
    out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
    residual_out = torch.empty_like(x, memory_format=torch.contiguous_format)
    launch_rms_norm_quant(x, x_residual, weight, scale, out, residual_out, epsilon, traced=False)
    return out, residual_out


ops.rms_norm_static_fp8_quant.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=rms_norm_static_fp8_quant_supports_args,
)(rms_norm_static_fp8_quant_cuda)

ops.fused_add_rms_norm_static_fp8_quant.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=fused_add_rms_norm_static_fp8_quant_supports_args,
)(fused_add_rms_norm_static_fp8_quant_cuda)
