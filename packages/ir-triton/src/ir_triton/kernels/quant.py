"""``dynamic_scaled_fp8_quant`` in Triton, shared by the Triton kernel sets, and the fp8 steps
that every quantizing kernel shares (:func:`saturate`, :func:`abs_bits`, :func:`dynamic_scale`).

Semantics are those of ``ir_op.ops.dynamic_scaled_fp8_quant``, in float32: ``scale = amax /
fp8_max`` rounded once (``div_rn``, as native divides by a tensor, correctly rounded on every
device), at least ``1 / (fp8_max * 512)``; with ``per_token`` and a ``scale_ub``,
``min(amax, scale_ub)`` first. Values are ``x / scale``, divided with ``div_rn`` too, saturated to
``±fp8_max`` with NaN kept and converted once, to nearest even, by the store into the fp8 output
(:mod:`ir_triton.fp8` says how that works under Triton's interpreter). So outputs and scales
equal native's, bit for bit, wherever the GPU's conversion is the round-to-nearest-even one.

``amax`` is the maximum of the float32 bit patterns of ``|x|`` taken as integers: for
non-negative floats integer order is numeric order, and NaN's patterns lie above infinity's, so a
NaN anywhere in the reduced range gives a NaN amax, as ``torch.amax`` does: its scale is NaN and
its values NaN; an infinity gives an infinite scale, finite values 0 and the infinity NaN.

Kernels:

- ``abs_max_kernel`` then ``quant_from_amax_kernel``: per tensor over several rows. The first
  folds ``TILES`` tiles per program into one int32 with ``atomic_max`` (zeroed before), one
  atomic per program; the second turns the amax into the scale in every program (the first
  also stores it) and quantizes its ``[ROWS, BLOCK]`` tile. Two passes over ``x`` (the second
  partly from L2) are the price of a global maximum; a tensor of one row takes the per-token
  kernels, in one pass (its amax is the row's).
- ``per_token_quant_rows_kernel``: rows up to the table's ``max_block`` held in registers,
  several per program when short: one read, each row's amax, scale and fp8 values.
- ``per_token_quant_looped_kernel``: one wider row per program in ``BLOCK``-wide chunks, a pass
  for the amax and one (mostly from L2) to quantize.

Why one body for every vendor: the arithmetic is the op's and the fp8 conversion is the store's,
compiled by each backend to its GPU's instruction (the format comes from the output tensor);
what differs by hardware is the tiles, the warps and the launch options, the cache and eviction
hints of the last read, programmatic dependent launch and how the values are divided by the
scale (:attr:`~ir_triton.configs.RowLaunch.exact_division`: ``div_rn`` by default, or a multiply
by the reciprocal), which a kernel set gives in a :class:`~ir_triton.configs.RowLaunch`.

Arguments the kernels take (:func:`~ir_triton.supports.dynamic_fp8_quant_supports_args`):
fp16, bf16 or fp32 ``x`` on the platform's device in row layout (last dimension contiguous, any
row stride); a ``scale_ub`` that is ``None`` or a one-element float32 tensor on ``x``'s device;
an ``fp8_dtype`` the kernel set's GPU converts to.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_op import ops
from ir_op.ops.fp8 import fp8_max, min_dynamic_scale
from ir_triton.configs import RowConfig, RowLaunch
from ir_triton.fp8 import fp8_store_finish, fp8_store_target
from ir_triton.kernel_ops import define_kernel_op, tracing
from ir_triton.launcher import BoundLauncher, KernelLauncher
from ir_triton.pdl import wait_for_previous_kernel
from ir_triton.rows import row_stride
from ir_triton.supports import Fp8Formats, dynamic_fp8_quant_supports_args

# -- the steps every quantizing kernel shares ---------------------------------------------------


@triton.jit  # type: ignore[untyped-decorator]
def saturate(v, FP8_MAX: tl.constexpr):  # type: ignore[no-untyped-def]
    """``v`` (float32) clamped to ``±FP8_MAX``, NaN kept (comparisons with NaN fail)."""
    return tl.where(v > FP8_MAX, FP8_MAX, tl.where(v < -FP8_MAX, -FP8_MAX, v))


@triton.jit
def abs_bits(x):  # type: ignore[no-untyped-def]
    """The bit patterns of ``|x|`` (float32) as int32: ordered as the values, NaN above inf."""
    return x.to(tl.int32, bitcast=True) & 0x7FFFFFFF


@triton.jit  # type: ignore[untyped-decorator]
def divide(x, scale, EXACT: tl.constexpr):  # type: ignore[no-untyped-def]
    """``x / scale`` in float32: correctly rounded (``EXACT``, ``div_rn``, as torch divides), or
    ``x`` times the reciprocal of ``scale``, rounded once (within 1.5 ulps of the quotient; see
    :attr:`~ir_triton.configs.RowLaunch.exact_division`)."""
    if EXACT:
        return tl.math.div_rn(x, scale)
    else:
        return x * tl.math.div_rn(1.0, scale)


@triton.jit  # type: ignore[untyped-decorator]
def dynamic_scale(amax, FP8_MAX: tl.constexpr, MIN_SCALE: tl.constexpr):  # type: ignore[no-untyped-def]
    """``max(amax / FP8_MAX, MIN_SCALE)``, the division rounded once; NaN kept."""
    scale = tl.math.div_rn(amax, FP8_MAX)
    return tl.where(scale < MIN_SCALE, MIN_SCALE, scale)


# -- Triton kernels -------------------------------------------------------------------------------


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
    ``amax_ptr`` (as bits): one atomic per program, not per tile. Default caching: the
    quantizing pass reads the same bytes next."""
    if USE_PDL:
        wait_for_previous_kernel()
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    largest = tl.zeros([ROWS, BLOCK], dtype=tl.int32)
    for tile in range(TILES):
        rows = (tl.program_id(0) * TILES + tile) * ROWS + tl.arange(0, ROWS)
        mask = (rows < n_rows)[:, None] & (cols < N_COLS)[None, :]
        rows = rows.to(tl.int64)[:, None]  # row * stride can pass 2**31 elements
        x = tl.load(x_ptr + rows * x_row_stride + cols[None, :], mask=mask, other=0.0)
        largest = tl.maximum(largest, abs_bits(x.to(tl.float32)))
    tl.atomic_max(amax_ptr, tl.max(tl.max(largest, axis=1), axis=0))


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def quant_from_amax_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    amax_ptr,
    scale_ptr,
    out_ptr,
    n_rows,
    N_COLS: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    FP8_MAX: tl.constexpr,
    MIN_SCALE: tl.constexpr,
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    EXACT: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """Quantize a ``[ROWS, BLOCK]`` tile into the contiguous ``[n_rows, N_COLS]`` out with the
    scale of the amax at ``amax_ptr`` (int32 bits), which the first program stores."""
    if USE_PDL:
        wait_for_previous_kernel()
    scale = dynamic_scale(tl.load(amax_ptr).to(tl.float32, bitcast=True), FP8_MAX, MIN_SCALE)
    if (tl.program_id(0) == 0) & (tl.program_id(1) == 0):
        tl.store(scale_ptr, scale)
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = (rows < n_rows)[:, None] & (cols < N_COLS)[None, :]
    rows = rows.to(tl.int64)[:, None]
    x = tl.load(
        x_ptr + rows * x_row_stride + cols[None, :],
        mask=mask,
        other=0.0,
        cache_modifier=STREAM,
        eviction_policy=READ_ONCE,
    )
    q = saturate(divide(x.to(tl.float32), scale, EXACT), FP8_MAX)
    tl.store(out_ptr + rows * N_COLS + cols[None, :], q.to(out_ptr.dtype.element_ty), mask=mask)


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
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    EXACT: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """Rows of a ``[ROWS, BLOCK]`` tile: each row's scale into ``scales_ptr``, its values
    quantized into the contiguous ``[n_rows, N_COLS]`` out."""
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
        cache_modifier=STREAM,
        eviction_policy=READ_ONCE,
    ).to(tl.float32)
    amax = tl.max(abs_bits(x), axis=1).to(tl.float32, bitcast=True)
    if HAS_SCALE_UB:
        amax = tl.minimum(amax, tl.load(scale_ub_ptr), propagate_nan=tl.PropagateNan.ALL)
    scale = dynamic_scale(amax, FP8_MAX, MIN_SCALE)
    tl.store(scales_ptr + rows, scale, mask=row_mask)
    q = saturate(divide(x, scale[:, None], EXACT), FP8_MAX)
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
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    EXACT: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """One row per program, in ``BLOCK``-wide chunks: its amax (default caching, so the second
    pass finds the row in L2), then its values (the last read: ``STREAM``)."""
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
    scale = dynamic_scale(amax, FP8_MAX, MIN_SCALE)
    tl.store(scales_ptr + row, scale)

    for chunk in range(chunks):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < N_COLS
        x = tl.load(
            x_row + cols, mask=mask, other=0.0, cache_modifier=STREAM, eviction_policy=READ_ONCE
        )
        q = saturate(divide(x.to(tl.float32), scale, EXACT), FP8_MAX)
        tl.store(out_row + cols, q.to(out_ptr.dtype.element_ty), mask=mask)


# -- launching ------------------------------------------------------------------------------------

AMAX_MAX_ATOMICS = 2048
"""Most amax programs of one launch: each ends with one atomic on the same address, and those
serialize in L2. Below it a program reduces one tile (the most reads in flight: on an H100,
256 x 4096 in 512 programs took 5.6 us where 32 programs of 16 tiles took 17.3); above it
programs fold up to ``AMAX_TILES[-1]`` tiles each."""
AMAX_TILES = (1, 2, 4, 8, 16)
"""Tiles an amax program may fold (one compiled kernel each, bound once per width)."""


def amax_tiles(row_blocks: int, chunks: int) -> int:
    """Tiles per amax program for ``row_blocks x chunks`` tiles: the fewest that keep the
    programs (atomics) within :data:`AMAX_MAX_ATOMICS`."""
    for tiles in AMAX_TILES:
        if (row_blocks + tiles - 1) // tiles * chunks <= AMAX_MAX_ATOMICS:
            return tiles
    return AMAX_TILES[-1]


def elementwise_grid(config: RowConfig, n_rows: int, n_cols: int) -> tuple[int, int]:
    """The grid of an elementwise launch over ``[rows, cols]`` in ``config``'s tiles: programs
    of ``config.rows`` rows along the first axis, ``config.block``-wide chunks along the second."""
    return (n_rows + config.rows - 1) // config.rows, (n_cols + config.block - 1) // config.block


def fp8_limits(fp8_dtype: torch.dtype) -> tuple[float, float]:
    """``(fp8_max, min_dynamic_scale)`` of ``fp8_dtype``: the kernels' constexprs."""
    return fp8_max(fp8_dtype), min_dynamic_scale(fp8_dtype)


def quant_hints(launch: RowLaunch, pdl: bool) -> tuple[str, str, bool, bool]:
    """The trailing constexprs of every quantizing kernel: ``(STREAM, READ_ONCE, EXACT,
    USE_PDL)``."""
    return launch.stream, launch.read_once, launch.exact_division, pdl


_TensorPlan = tuple[RowLaunch, RowConfig, dict[int, BoundLauncher], BoundLauncher]
"""Per tensor: (the launch it was made for, tile config, the amax launch by tiles per program,
the quantizing launch)."""
_TokenPlan = tuple[RowLaunch, RowConfig, BoundLauncher]
"""Per token: (the launch it was made for, row config (looped or not), the bound launch)."""


class DynamicFp8QuantProviders:
    """A kernel set's ``dynamic_scaled_fp8_quant`` operator and provider on this module's kernels.

    It defines ``torch.ops.<namespace>.dynamic_scaled_fp8_quant``, which the provider calls while
    :func:`~ir_triton.tracing`; :meth:`register` registers the provider. Each kernel set has
    its own launchers (its own compiled-kernel caches) and ``formats``, the fp8 formats its GPUs
    convert to.
    """

    def __init__(self, namespace: str, launch: RowLaunch, formats: Fp8Formats) -> None:
        self.launch = launch
        self.formats = formats
        self.abs_max_launcher = KernelLauncher(abs_max_kernel)
        self.quant_launcher = KernelLauncher(quant_from_amax_kernel)
        self.rows_launcher = KernelLauncher(per_token_quant_rows_kernel)
        self.looped_launcher = KernelLauncher(per_token_quant_looped_kernel)
        self.tensor_plans: dict[tuple[int, torch.dtype, bool], _TensorPlan] = {}
        """Per-tensor bound launches by (width, fp8 format, PDL?)."""
        self.token_plans: dict[tuple[int, bool, torch.dtype, bool, bool], _TokenPlan] = {}
        """Per-token bound launches by (width, scale_ub?, fp8 format, PDL?, decode?)."""
        quantize = self.quantize

        def traced_op(
            x: Tensor,
            per_token: bool = False,
            scale_ub: Tensor | None = None,
            fp8_dtype: torch.dtype = torch.float8_e4m3fn,
        ) -> tuple[Tensor, Tensor]:
            out, scales = _new_outputs(x, per_token, fp8_dtype)
            quantize(x, per_token, scale_ub, out, scales, True)
            return out, scales

        self.op = define_kernel_op(
            f"{namespace}::dynamic_scaled_fp8_quant",
            traced_op,
            fake=ops.dynamic_scaled_fp8_quant.native_fn,
        )

    def _tensor_plan(self, n_cols: int, fp8_dtype: torch.dtype, pdl: bool) -> _TensorPlan:
        launch = self.launch
        config = launch.elementwise_config(n_cols)
        options = launch.launch_options(config, pdl)
        amax = {
            tiles: self.abs_max_launcher.bind(
                n_cols, config.block, config.rows, tiles, pdl, **options
            )
            for tiles in AMAX_TILES
        }
        quantize = self.quant_launcher.bind(
            n_cols, config.block, config.rows, *fp8_limits(fp8_dtype), *quant_hints(launch, pdl),
            **options,
        )  # fmt: skip
        plan = self.tensor_plans[n_cols, fp8_dtype, pdl] = (launch, config, amax, quantize)
        return plan

    def _token_plan(
        self, n_cols: int, has_scale_ub: bool, fp8_dtype: torch.dtype, pdl: bool, decode: bool
    ) -> _TokenPlan:
        launch = self.launch
        config = launch.table.config(n_cols, 1 if decode else None)
        options = launch.launch_options(config, pdl)
        flags = (has_scale_ub, *fp8_limits(fp8_dtype), *quant_hints(launch, pdl))
        if config.looped:
            bound = self.looped_launcher.bind(n_cols, config.block, *flags, **options)
        else:
            bound = self.rows_launcher.bind(n_cols, config.block, config.rows, *flags, **options)
        key = (n_cols, has_scale_ub, fp8_dtype, pdl, decode)
        plan = self.token_plans[key] = (launch, config, bound)
        return plan

    def quantize(
        self,
        x: Tensor,
        per_token: bool,
        scale_ub: Tensor | None,
        out: Tensor,
        scales: Tensor,
        traced: bool,
    ) -> None:
        """Quantize ``x`` (row layout) into ``out`` (new, contiguous, fp8) and its scales into
        ``scales`` (new, contiguous float32: ``[1]`` per tensor, one per row per token).
        ``traced`` launches the way ``torch.compile`` traces (inside an operator); a symbolic
        width is specialized (it is a constexpr)."""
        n_cols = int(x.shape[-1]) if traced else x.shape[-1]
        n_rows = x.numel() // n_cols if n_cols else 0
        if n_cols == 0 or (n_rows == 0 and not per_token):  # no values: amax 0
            scales.fill_(min_dynamic_scale(out.dtype))
            return
        if n_rows == 0:
            return
        target = fp8_store_target(out)
        if per_token or n_rows == 1:  # one row's amax is the tensor's: one pass
            self._per_token(x, scale_ub if per_token else None, target, scales, n_rows, n_cols,
                            out.dtype, traced)  # fmt: skip
        else:
            self._per_tensor(x, target, scales, n_rows, n_cols, out.dtype, traced)
        fp8_store_finish(out, target)

    def _per_tensor(
        self,
        x: Tensor,
        out: Tensor,
        scales: Tensor,
        n_rows: int,
        n_cols: int,
        fp8_dtype: torch.dtype,
        traced: bool,
    ) -> None:
        pdl = self.launch.uses_pdl(traced)
        plan = self.tensor_plans.get((n_cols, fp8_dtype, pdl))
        if plan is None or plan[0] is not self.launch:
            plan = self._tensor_plan(n_cols, fp8_dtype, pdl)
        _, config, find_amax, quantize = plan
        row_blocks, chunks = elementwise_grid(config, n_rows, n_cols)
        # a traced row count may be symbolic: the tiles (a constexpr) then assume the most rows
        tiles = AMAX_TILES[-1] if traced else amax_tiles(row_blocks, chunks)
        amax = torch.zeros(1, dtype=torch.int32, device=x.device)
        stride = row_stride(x)
        launch_amax = find_amax[tiles]
        (launch_amax.traced if traced else launch_amax.launch)(
            ((row_blocks + tiles - 1) // tiles, chunks), x, stride, amax, n_rows
        )
        (quantize.traced if traced else quantize.launch)(
            elementwise_grid(config, n_rows, n_cols), x, stride, amax, scales, out, n_rows
        )

    def _per_token(
        self,
        x: Tensor,
        scale_ub: Tensor | None,
        out: Tensor,
        scales: Tensor,
        n_rows: int,
        n_cols: int,
        fp8_dtype: torch.dtype,
        traced: bool,
    ) -> None:
        launch = self.launch
        pdl = launch.uses_pdl(traced)
        decode = not traced and launch.table.is_decode(n_rows)  # a traced count may be symbolic
        key = (n_cols, scale_ub is not None, fp8_dtype, pdl, decode)
        plan = self.token_plans.get(key)
        if plan is None or plan[0] is not launch:
            plan = self._token_plan(*key)
        _, config, bound = plan
        run = bound.traced if traced else bound.launch
        if config.looped:
            run((n_rows,), x, row_stride(x), out, scales, scale_ub)
        else:
            run(config.grid(n_rows), x, row_stride(x), out, scales, scale_ub, n_rows)

    def provider(
        self,
        x: Tensor,
        per_token: bool = False,
        scale_ub: Tensor | None = None,
        fp8_dtype: torch.dtype = torch.float8_e4m3fn,
    ) -> tuple[Tensor, Tensor]:
        """The provider: new ``(quantized, scales)``, as the op returns them."""
        if tracing():
            traced: tuple[Tensor, Tensor] = self.op(x, per_token, scale_ub, fp8_dtype)
            return traced
        out, scales = _new_outputs(x, per_token, fp8_dtype)
        self.quantize(x, per_token, scale_ub, out, scales, False)
        return out, scales

    def register(
        self,
        provider: str,
        supported: Callable[[], bool],
        unsupported_reason: Callable[[], str | None],
    ) -> None:
        """Register :meth:`provider` as ``dynamic_scaled_fp8_quant``'s provider ``provider``."""
        ops.dynamic_scaled_fp8_quant.register_impl(
            provider,
            supported=supported,
            unsupported_reason=unsupported_reason,
            supports_args=dynamic_fp8_quant_supports_args(self.formats),
        )(self.provider)


def _new_outputs(x: Tensor, per_token: bool, fp8_dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
    scales_shape = (*x.shape[:-1], 1) if per_token else (1,)
    return out, torch.empty(scales_shape, dtype=torch.float32, device=x.device)
