"""The ``cuda`` providers of ``static_scaled_fp8_quant`` and ``dynamic_scaled_fp8_quant``: Triton
kernels and their registration.

Semantics are those of ``ir_op.ops.quant``, in float32: ``q = clamp(x / scale, ±448)`` cast to
``float8_e4m3fn``, NaN kept (:mod:`ir_kernels_cuda._fp8`). The kernels multiply by the scale's
float32 reciprocal, rounded once per program: within 1.5 float32 ulps of the division, so at
most one fp8 step away (the ops' tolerance) and almost always equal. Dynamic scales are exact:
``amax / 448`` rounded once (``div_rn``), at least ``1 / (448 * 512)``; with ``per_token`` and a
``scale_ub``, ``min(amax, scale_ub)`` first.

``amax`` is the maximum of the float32 bit patterns of ``|x|`` taken as integers: for
non-negative floats integer order is numeric order, and NaN's patterns lie above infinity's, so
a NaN anywhere in the reduced range gives a NaN amax, as ``torch.amax`` does: its scale is NaN and
its values quantize to NaN; an infinity gives an infinite scale, finite values 0 and the
infinity NaN. That is the native function's behaviour, by design.

Kernels:

- ``fp8_quant_kernel``: elementwise over ``[ROWS, BLOCK]`` tiles (:mod:`ir_kernels_cuda._tiles`),
  one read of ``x`` and one fp8 write. With ``SCALE_FROM_AMAX`` it is the second kernel of a
  per-tensor dynamic quantization: each program turns the amax into the scale, the first one
  also stores it.
- ``abs_max_kernel``: the first kernel of a per-tensor dynamic quantization: each program reduces
  a few tiles and folds them into one int32 with ``atomic_max`` (zeroed before). Two passes over
  ``x`` (the second partly from L2) are the price of a global maximum; a tensor of one row takes
  the per-token kernels instead, in one pass and one launch (its amax is the row's).
- ``per_token_quant_rows_kernel``: rows of up to 8192 columns held in registers, several per
  program when short: one read, the row's amax, its scale and its fp8 values written.
- ``per_token_quant_looped_kernel``: one wider row per program in ``BLOCK``-wide chunks, a pass
  for the amax and one (mostly from L2) to quantize.

Arguments the kernels take (``supports_args``): fp16, bf16 or fp32 ``x`` on the platform's
device in row layout (last dimension contiguous, any row stride); static scales and
``scale_ub`` one-element float32 tensors on ``x``'s device; ``fp8_dtype=torch.float8_e4m3fn``.
"""

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_kernels_cuda._fp8 import FP8_DTYPE, FP8_MAX, clamp_for_fp8
from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda._tiles import elementwise_tile
from ir_kernels_cuda.pdl import PDL, pdl_enabled, wait_for_previous_kernel
from ir_op import ops
from ir_op.ops.fp8 import min_dynamic_scale
from ir_triton import (
    NVIDIA_ROW_TABLE,
    BoundLauncher,
    KernelLauncher,
    RowTable,
    define_kernel_op,
    tracing,
)
from ir_triton.kernels.quant import AMAX_TILES, amax_tiles
from ir_triton.rows import (
    FLOAT_DTYPES,
    NOT_ARGUMENTS,
    has_row_layout,
    on_platform_device,
    row_stride,
)
from ir_triton.supports import is_static_scale

MIN_SCALE = min_dynamic_scale(FP8_DTYPE)
"""Dynamic scales are at least ``1 / (448 * 512)``."""

# -- Triton kernels -------------------------------------------------------------------------------


@triton.jit
def abs_bits(x):  # type: ignore[no-untyped-def]
    """The bit patterns of ``|x|`` (float32) as int32: ordered as the values, NaN above inf."""
    return x.to(tl.int32, bitcast=True) & 0x7FFFFFFF


@triton.jit  # type: ignore[untyped-decorator]
def scale_of(amax, FP8_MAX: tl.constexpr, MIN_SCALE: tl.constexpr):  # type: ignore[no-untyped-def]
    """``max(amax / FP8_MAX, MIN_SCALE)``, the division rounded once; NaN kept."""
    scale = tl.math.div_rn(amax, FP8_MAX)
    return tl.where(scale < MIN_SCALE, MIN_SCALE, scale)


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def fp8_quant_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    out_ptr,
    scale_ptr,
    amax_ptr,
    n_rows,
    N_COLS: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    SCALE_FROM_AMAX: tl.constexpr,
    FP8_MAX: tl.constexpr,
    MIN_SCALE: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """Quantize a ``[ROWS, BLOCK]`` tile into the contiguous ``[n_rows, N_COLS]`` fp8 out, with
    the scale at ``scale_ptr``, or (``SCALE_FROM_AMAX``) the one of the amax at ``amax_ptr``,
    which the first program stores at ``scale_ptr``."""
    if USE_PDL:
        wait_for_previous_kernel()
    if SCALE_FROM_AMAX:
        scale = scale_of(tl.load(amax_ptr).to(tl.float32, bitcast=True), FP8_MAX, MIN_SCALE)
        if (tl.program_id(0) == 0) & (tl.program_id(1) == 0):
            tl.store(scale_ptr, scale)
    else:
        scale = tl.load(scale_ptr)
    inverse_scale = tl.math.div_rn(1.0, scale)
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = (rows < n_rows)[:, None] & (cols < N_COLS)[None, :]
    rows = rows.to(tl.int64)[:, None]  # row * stride can pass 2**31 elements
    x = tl.load(
        x_ptr + rows * x_row_stride + cols[None, :],
        mask=mask,
        other=0.0,
        eviction_policy="evict_first",
    )
    q = clamp_for_fp8(x.to(tl.float32) * inverse_scale, FP8_MAX)
    tl.store(out_ptr + rows * N_COLS + cols[None, :], q.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def abs_max_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    amax_ptr,
    n_rows,
    N_COLS: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    TILES: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """Fold ``max |x|`` of ``TILES`` consecutive ``[ROWS, BLOCK]`` tiles into the int32 at
    ``amax_ptr`` (as bits): one atomic per program, not per tile."""
    if USE_PDL:
        wait_for_previous_kernel()
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    largest = tl.zeros([ROWS, BLOCK], dtype=tl.int32)
    for tile in range(TILES):
        rows = (tl.program_id(0) * TILES + tile) * ROWS + tl.arange(0, ROWS)
        mask = (rows < n_rows)[:, None] & (cols < N_COLS)[None, :]
        rows = rows.to(tl.int64)[:, None]
        # kept in L2 for the quantizing pass that follows
        x = tl.load(x_ptr + rows * x_row_stride + cols[None, :], mask=mask, other=0.0)
        largest = tl.maximum(largest, abs_bits(x.to(tl.float32)))
    tl.atomic_max(amax_ptr, tl.max(tl.max(largest, axis=1), axis=0))


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def per_token_quant_rows_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    out_ptr,
    scales_ptr,
    scale_ub_ptr,
    n_rows,
    N_COLS: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    HAS_SCALE_UB: tl.constexpr,
    FP8_MAX: tl.constexpr,
    MIN_SCALE: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """Rows of a ``[ROWS, BLOCK]`` tile: each row's scale into ``scales_ptr``, its values
    quantized into the contiguous ``[n_rows, N_COLS]`` fp8 out."""
    if USE_PDL:
        wait_for_previous_kernel()
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    row_mask = rows < n_rows
    mask = row_mask[:, None] & (cols < N_COLS)[None, :]
    rows = rows.to(tl.int64)
    x = tl.load(
        x_ptr + rows[:, None] * x_row_stride + cols[None, :],
        mask=mask,
        other=0.0,
        eviction_policy="evict_first",
    ).to(tl.float32)
    amax = tl.max(abs_bits(x), axis=1).to(tl.float32, bitcast=True)
    if HAS_SCALE_UB:
        amax = tl.minimum(amax, tl.load(scale_ub_ptr), propagate_nan=tl.PropagateNan.ALL)
    scale = scale_of(amax, FP8_MAX, MIN_SCALE)
    tl.store(scales_ptr + rows, scale, mask=row_mask)
    q = clamp_for_fp8(x * tl.math.div_rn(1.0, scale)[:, None], FP8_MAX)
    out_ptrs = out_ptr + rows[:, None] * N_COLS + cols[None, :]
    tl.store(out_ptrs, q.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit  # type: ignore[untyped-decorator]
def per_token_quant_looped_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    out_ptr,
    scales_ptr,
    scale_ub_ptr,
    N_COLS: tl.constexpr,
    BLOCK: tl.constexpr,
    HAS_SCALE_UB: tl.constexpr,
    FP8_MAX: tl.constexpr,
    MIN_SCALE: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """One row per program, in ``BLOCK``-wide chunks: its amax, then its values."""
    if USE_PDL:
        wait_for_previous_kernel()
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_row_stride
    out_row = out_ptr + row * N_COLS
    chunks: tl.constexpr = (N_COLS + BLOCK - 1) // BLOCK

    largest = tl.zeros([BLOCK], dtype=tl.int32)
    for chunk in range(chunks):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        x = tl.load(x_row + cols, mask=cols < N_COLS, other=0.0)
        largest = tl.maximum(largest, abs_bits(x.to(tl.float32)))
    amax = tl.max(largest, axis=0).to(tl.float32, bitcast=True)
    if HAS_SCALE_UB:
        amax = tl.minimum(amax, tl.load(scale_ub_ptr), propagate_nan=tl.PropagateNan.ALL)
    scale = scale_of(amax, FP8_MAX, MIN_SCALE)
    tl.store(scales_ptr + row, scale)
    inverse_scale = tl.math.div_rn(1.0, scale)

    # The second pass reads the row again (from L2, where the first pass left it), for the last
    # time.
    for chunk in range(chunks):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < N_COLS
        x = tl.load(x_row + cols, mask=mask, other=0.0, eviction_policy="evict_first")
        q = clamp_for_fp8(x.to(tl.float32) * inverse_scale, FP8_MAX)
        tl.store(out_row + cols, q.to(out_ptr.dtype.element_ty), mask=mask)


# -- launching ------------------------------------------------------------------------------------

ROW_TABLE: RowTable = NVIDIA_ROW_TABLE
"""Block and warp choices of the per-token kernels (a module global, so a benchmark can try
another table)."""
ELEMENTWISE_TABLE: RowTable = NVIDIA_ROW_TABLE
"""Rows per program and warps of the elementwise tiles (:mod:`ir_kernels_cuda._tiles`)."""

QUANT_LAUNCHER = KernelLauncher(fp8_quant_kernel)
ABS_MAX_LAUNCHER = KernelLauncher(abs_max_kernel)
PER_TOKEN_ROWS_LAUNCHER = KernelLauncher(per_token_quant_rows_kernel)
PER_TOKEN_LOOPED_LAUNCHER = KernelLauncher(per_token_quant_looped_kernel)

_TensorPlan = tuple[RowTable, int, int, BoundLauncher, dict[int, BoundLauncher]]
"""Per-tensor scales: (the table it was made with, rows per program, chunks per row, the
quantizing launch, the amax launch by tiles per program (bound in every plan, launched for
dynamic scales only: binding compiles nothing))."""

_TENSOR_PLANS: dict[tuple[int, bool, bool], _TensorPlan] = {}

_TokenPlan = tuple[RowTable, int, BoundLauncher]
"""Per-token scales: (the table it was made with, rows per program (0: looped kernel), the
bound launch)."""

_TOKEN_PLANS: dict[tuple[int, bool, bool, bool], _TokenPlan] = {}


def _tensor_plan(n_cols: int, dynamic: bool, pdl: bool) -> _TensorPlan:
    """Tiles, constexprs and options of a per-tensor quantization of one width (made once)."""
    table = ELEMENTWISE_TABLE
    block, rows, chunks, num_warps = elementwise_tile(table, n_cols)
    options = {"num_warps": num_warps, "launch_pdl": pdl}
    quantize = QUANT_LAUNCHER.bind(n_cols, block, rows, dynamic, FP8_MAX, MIN_SCALE, pdl, **options)
    amax = {
        tiles: ABS_MAX_LAUNCHER.bind(n_cols, block, rows, tiles, pdl, **options)
        for tiles in AMAX_TILES
    }
    plan: _TensorPlan = (table, rows, chunks, quantize, amax)
    _TENSOR_PLANS[n_cols, dynamic, pdl] = plan
    return plan


def _token_plan(n_cols: int, has_scale_ub: bool, pdl: bool, decode: bool) -> _TokenPlan:
    """Kernel, constexprs and options of a per-token quantization of one width and launch size
    (made once; ``decode``: a launch of at most ``ROW_TABLE.decode_rows`` rows)."""
    table = ROW_TABLE
    config = table.config(n_cols, 1 if decode else None)
    options = {"num_warps": config.num_warps, "launch_pdl": pdl}
    if config.looped:
        bound = PER_TOKEN_LOOPED_LAUNCHER.bind(
            n_cols, config.block, has_scale_ub, FP8_MAX, MIN_SCALE, pdl, **options
        )
        plan: _TokenPlan = (table, 0, bound)
    else:
        bound = PER_TOKEN_ROWS_LAUNCHER.bind(
            n_cols, config.block, config.rows, has_scale_ub, FP8_MAX, MIN_SCALE, pdl, **options
        )
        plan = (table, config.rows, bound)
    _TOKEN_PLANS[n_cols, has_scale_ub, pdl, decode] = plan
    return plan


def _width(x: Tensor, traced: bool) -> int:
    n_cols = x.shape[-1]
    return int(n_cols) if traced else n_cols  # a constexpr: a symbolic width is specialized


def launch_static_quant(x: Tensor, scale: Tensor, out: Tensor, traced: bool) -> None:
    """Quantize ``x`` (row layout) into ``out`` (new, contiguous, fp8) with a static scale.
    ``traced`` launches the way ``torch.compile`` traces (inside an operator), without PDL."""
    n_cols = _width(x, traced)
    n_rows = x.numel() // n_cols if n_cols else 0
    if n_rows == 0:
        return
    pdl = False if traced else PDL.enabled
    if pdl is None:
        pdl = pdl_enabled()
    plan = _TENSOR_PLANS.get((n_cols, False, pdl))
    if plan is None or plan[0] is not ELEMENTWISE_TABLE:
        plan = _tensor_plan(n_cols, False, pdl)
    _, rows, chunks, quantize, _ = plan
    (quantize.traced if traced else quantize.launch)(
        ((n_rows + rows - 1) // rows, chunks), x, row_stride(x), out, scale, None, n_rows
    )


def launch_dynamic_quant(
    x: Tensor,
    per_token: bool,
    scale_ub: Tensor | None,
    out: Tensor,
    scales: Tensor,
    traced: bool,
) -> None:
    """Quantize ``x`` (row layout) into ``out`` (new, contiguous, fp8), writing the scales into
    ``scales`` (new, contiguous float32: ``[1]`` per tensor, one per row per token)."""
    n_cols = _width(x, traced)
    n_rows = x.numel() // n_cols if n_cols else 0
    if n_cols == 0 or (n_rows == 0 and not per_token):  # no values: amax 0
        scales.fill_(MIN_SCALE)
        return
    if n_rows == 0:
        return
    pdl = False if traced else PDL.enabled
    if pdl is None:
        pdl = pdl_enabled()
    if per_token or n_rows == 1:  # one row's amax is the tensor's: one pass
        _launch_per_token(
            x, scale_ub if per_token else None, out, scales, n_rows, n_cols, pdl, traced
        )
        return
    plan = _TENSOR_PLANS.get((n_cols, True, pdl))
    if plan is None or plan[0] is not ELEMENTWISE_TABLE:
        plan = _tensor_plan(n_cols, True, pdl)
    _, rows, chunks, quantize, find_amax = plan
    row_blocks = (n_rows + rows - 1) // rows
    # a traced row count may be symbolic: the tiles (a constexpr) then assume the most rows
    tiles = AMAX_TILES[-1] if traced else amax_tiles(row_blocks, chunks)
    amax = torch.zeros(1, dtype=torch.int32, device=x.device)
    stride = row_stride(x)
    launch_amax = find_amax[tiles]
    (launch_amax.traced if traced else launch_amax.launch)(
        ((row_blocks + tiles - 1) // tiles, chunks), x, stride, amax, n_rows
    )
    (quantize.traced if traced else quantize.launch)(
        (row_blocks, chunks), x, stride, out, scales, amax, n_rows
    )


def _launch_per_token(
    x: Tensor,
    scale_ub: Tensor | None,
    out: Tensor,
    scales: Tensor,
    n_rows: int,
    n_cols: int,
    pdl: bool,
    traced: bool,
) -> None:
    has_scale_ub = scale_ub is not None
    decode = not traced and n_rows <= ROW_TABLE.decode_rows  # (a traced count may be symbolic)
    plan = _TOKEN_PLANS.get((n_cols, has_scale_ub, pdl, decode))
    if plan is None or plan[0] is not ROW_TABLE:
        plan = _token_plan(n_cols, has_scale_ub, pdl, decode)
    _, rows, bound = plan
    launch = bound.traced if traced else bound.launch
    if rows:
        launch(((n_rows + rows - 1) // rows,), x, row_stride(x), out, scales, scale_ub, n_rows)
    else:
        launch((n_rows,), x, row_stride(x), out, scales, scale_ub)


# -- supports_args ------------------------------------------------------------------------------


def _quantizable(x: Tensor, fp8_dtype: torch.dtype) -> bool:
    return (
        fp8_dtype == FP8_DTYPE
        and x.dtype in FLOAT_DTYPES
        and on_platform_device(x)
        and has_row_layout(x)
    )


def static_scaled_fp8_quant_supports_args(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = FP8_DTYPE
) -> bool:
    try:
        return _quantizable(x, fp8_dtype) and is_static_scale(scale, x)
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


def dynamic_scaled_fp8_quant_supports_args(
    x: Tensor,
    per_token: bool = False,
    scale_ub: Tensor | None = None,
    fp8_dtype: torch.dtype = FP8_DTYPE,
) -> bool:
    try:
        return _quantizable(x, fp8_dtype) and (scale_ub is None or is_static_scale(scale_ub, x))
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


# -- operators for torch.compile ----------------------------------------------------------------


def _scales_for(x: Tensor, per_token: bool) -> Tensor:
    shape = (*x.shape[:-1], 1) if per_token else (1,)
    return torch.empty(shape, dtype=torch.float32, device=x.device)


def _static_scaled_fp8_quant_op(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = FP8_DTYPE
) -> Tensor:
    out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
    launch_static_quant(x, scale, out, traced=True)
    return out


def _dynamic_scaled_fp8_quant_op(
    x: Tensor,
    per_token: bool = False,
    scale_ub: Tensor | None = None,
    fp8_dtype: torch.dtype = FP8_DTYPE,
) -> tuple[Tensor, Tensor]:
    out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
    scales = _scales_for(x, per_token)
    launch_dynamic_quant(x, per_token, scale_ub, out, scales, traced=True)
    return out, scales


STATIC_SCALED_FP8_QUANT_OP = define_kernel_op(
    "ir_cuda::static_scaled_fp8_quant",
    _static_scaled_fp8_quant_op,
    fake=ops.static_scaled_fp8_quant.native_fn,
)
DYNAMIC_SCALED_FP8_QUANT_OP = define_kernel_op(
    "ir_cuda::dynamic_scaled_fp8_quant",
    _dynamic_scaled_fp8_quant_op,
    fake=ops.dynamic_scaled_fp8_quant.native_fn,
)


# -- providers ------------------------------------------------------------------------------------


def static_scaled_fp8_quant_cuda(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = FP8_DTYPE
) -> Tensor:
    if tracing():
        traced: Tensor = STATIC_SCALED_FP8_QUANT_OP(x, scale, fp8_dtype)
        return traced
    out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
    launch_static_quant(x, scale, out, traced=False)
    return out


def dynamic_scaled_fp8_quant_cuda(
    x: Tensor,
    per_token: bool = False,
    scale_ub: Tensor | None = None,
    fp8_dtype: torch.dtype = FP8_DTYPE,
) -> tuple[Tensor, Tensor]:
    if tracing():
        out, scales = DYNAMIC_SCALED_FP8_QUANT_OP(x, per_token, scale_ub, fp8_dtype)
        return out, scales
    out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
    scales = _scales_for(x, per_token)
    launch_dynamic_quant(x, per_token, scale_ub, out, scales, traced=False)
    return out, scales


ops.static_scaled_fp8_quant.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=static_scaled_fp8_quant_supports_args,
)(static_scaled_fp8_quant_cuda)

ops.dynamic_scaled_fp8_quant.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=dynamic_scaled_fp8_quant_supports_args,
)(dynamic_scaled_fp8_quant_cuda)
