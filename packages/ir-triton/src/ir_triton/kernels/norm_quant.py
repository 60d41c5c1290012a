"""``rms_norm_static_fp8_quant`` and ``fused_add_rms_norm_static_fp8_quant`` in Triton: RMS
normalization (after the residual add) fused with the static fp8 quantization of its output, in
one pass; shared by the Triton kernel sets.

Semantics are those of the compositions in ``ir_op.ops.composite``, intermediate roundings included:
the (residual) sum and the mean of squares are float32, ``residual_out`` is the sum rounded to
``x``'s dtype; the normalized row is rounded to ``x``'s dtype, multiplied by the weight in float32
and rounded again (what ``rms_norm`` returns); that value is divided by the scale in float32
(``div_rn``, as torch divides, or by a multiply with the reciprocal where the launch's
:attr:`~ir_triton.configs.RowLaunch.exact_division` is off), saturated to ``±fp8_max`` with NaN kept
(:func:`~ir_triton.kernels.quant.saturate`) and converted once by the store into the fp8 output
(:mod:`ir_triton.fp8`).

The unfused pair reads ``x`` twice and writes the normalized row in ``x``'s dtype in between
(7 bytes per bf16 element, 11 with the residual); these kernels read ``x`` (and the residual)
once and write one fp8 byte (and the sum): 3 bytes per element, 7 with the residual.

- ``rms_norm_quant_rows_kernel``: a ``[ROWS, BLOCK]`` tile, each row read once into registers
  (rows up to the table's ``max_block``; short rows packed several per program);
- ``rms_norm_quant_looped_kernel``: one program per wider row, a first pass over
  ``BLOCK``-wide chunks for the statistic (default caching, so that the second finds the row in
  L2), a second that writes (the last read: the launch's streaming hint).

Why one body for every vendor: the arithmetic is the composition's and the fp8 conversion is the
store's, which each backend compiles to its GPU's instruction; tiles (decode launches take the
table's decode warps), warps, launch options, the cache and eviction hints of the last read and
of the weight, programmatic dependent launch and the division mode come from the kernel set's
:class:`~ir_triton.configs.RowLaunch`.

Arguments the kernels take (:mod:`ir_triton.supports`): fp16, bf16 or fp32 activations on the
platform's device in row layout (last dimension contiguous, any row stride); a weight that is
``None`` or a contiguous ``[hidden]`` vector of ``x``'s dtype; a one-element float32 scale on
``x``'s device; an ``fp8_dtype`` the kernel set's GPU converts to; a residual of ``x``'s shape
and dtype. Outputs are new contiguous tensors.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_op import ops
from ir_triton.configs import RowConfig, RowLaunch
from ir_triton.fp8 import fp8_store_finish, fp8_store_target
from ir_triton.kernel_ops import define_kernel_op, tracing
from ir_triton.kernels.quant import divide, fp8_limits, saturate
from ir_triton.launcher import BoundLauncher, KernelLauncher
from ir_triton.pdl import wait_for_previous_kernel
from ir_triton.rows import row_stride
from ir_triton.supports import (
    Fp8Formats,
    fused_add_rms_norm_static_fp8_quant_supports_args,
    rms_norm_static_fp8_quant_supports_args,
)

# -- Triton kernels -------------------------------------------------------------------------------


@triton.jit  # type: ignore[untyped-decorator]
def normalize_and_quantize(  # type: ignore[no-untyped-def]
    x,
    rstd,
    weight,
    scale,
    DTYPE: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    FP8_MAX: tl.constexpr,
    EXACT: tl.constexpr,
):
    """``rms_norm``'s output (rounded to ``DTYPE``, weighted in float32, rounded again), then
    divided by the scale and saturated, ready for the conversion to fp8."""
    out = (x * rstd).to(DTYPE)
    if HAS_WEIGHT:
        out = (out.to(tl.float32) * weight).to(DTYPE)
    return saturate(divide(out.to(tl.float32), scale, EXACT), FP8_MAX)


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
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    REUSED: tl.constexpr,
    EXACT: tl.constexpr,
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

    x = tl.load(
        x_ptr + rows * x_row_stride + cols_2d,
        mask=mask,
        other=0.0,
        cache_modifier=STREAM,
        eviction_policy=READ_ONCE,
    ).to(tl.float32)
    if HAS_RESIDUAL:
        residual = tl.load(
            residual_ptr + rows * residual_row_stride + cols_2d,
            mask=mask,
            other=0.0,
            cache_modifier=STREAM,
            eviction_policy=READ_ONCE,
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
        weight = tl.load(weight_ptr + cols, mask=col_mask, other=0.0, eviction_policy=REUSED)
        weight = weight.to(tl.float32)[None, :]
    q = normalize_and_quantize(
        x, rstd[:, None], weight, tl.load(scale_ptr), x_ptr.dtype.element_ty, HAS_WEIGHT,
        FP8_MAX, EXACT,
    )  # fmt: skip
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
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    REUSED: tl.constexpr,
    EXACT: tl.constexpr,
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
            residual_row = residual_ptr + row * residual_row_stride
            x = x + tl.load(residual_row + cols, mask=mask, other=0.0).to(tl.float32)
        squares += x * x
    rstd = tl.rsqrt(tl.sum(squares, axis=0) / N_COLS + epsilon)
    scale = tl.load(scale_ptr)

    for chunk in range(chunks):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < N_COLS
        x = tl.load(
            x_row + cols, mask=mask, other=0.0, cache_modifier=STREAM, eviction_policy=READ_ONCE
        ).to(tl.float32)
        if HAS_RESIDUAL:
            residual_row = residual_ptr + row * residual_row_stride
            residual = tl.load(
                residual_row + cols,
                mask=mask,
                other=0.0,
                cache_modifier=STREAM,
                eviction_policy=READ_ONCE,
            )
            x = x + residual.to(tl.float32)
            tl.store(
                residual_out_ptr + row * N_COLS + cols,
                x.to(residual_out_ptr.dtype.element_ty),
                mask=mask,
            )
        weight = None
        if HAS_WEIGHT:
            weight = tl.load(weight_ptr + cols, mask=mask, other=0.0, eviction_policy=REUSED)
            weight = weight.to(tl.float32)
        q = normalize_and_quantize(
            x, rstd, weight, scale, x_ptr.dtype.element_ty, HAS_WEIGHT, FP8_MAX, EXACT
        )
        tl.store(out_ptr + row * N_COLS + cols, q.to(out_ptr.dtype.element_ty), mask=mask)


# -- operators and providers ----------------------------------------------------------------------

_Plan = tuple[RowLaunch, RowConfig, BoundLauncher]
"""(the launch it was made for, row config (looped or not), the bound launch)."""


class RmsNormQuantProviders:
    """A kernel set's fused ``rms_norm_static_fp8_quant`` and
    ``fused_add_rms_norm_static_fp8_quant`` operators and providers on this module's kernels.

    It defines ``torch.ops.<namespace>.rms_norm_static_fp8_quant`` and
    ``torch.ops.<namespace>.fused_add_rms_norm_static_fp8_quant``, which the providers call while
    :func:`~ir_triton.tracing`; :meth:`register` registers the providers. ``formats`` are the
    fp8 formats the kernel set's GPUs convert to.
    """

    def __init__(self, namespace: str, launch: RowLaunch, formats: Fp8Formats) -> None:
        self.launch = launch
        self.formats = formats
        self.rows_launcher = KernelLauncher(rms_norm_quant_rows_kernel)
        self.looped_launcher = KernelLauncher(rms_norm_quant_looped_kernel)
        self.plans: dict[tuple[int, bool, bool, torch.dtype, bool, bool], _Plan] = {}
        """Bound launches by (width, residual?, weight?, fp8 format, PDL?, decode?)."""
        normalize = self.normalize

        def traced_op(
            x: Tensor,
            weight: Tensor | None,
            epsilon: float,
            scale: Tensor,
            fp8_dtype: torch.dtype = torch.float8_e4m3fn,
        ) -> Tensor:
            out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
            normalize(x, None, weight, scale, out, None, epsilon, True)
            return out

        def traced_residual_op(
            x: Tensor,
            x_residual: Tensor,
            weight: Tensor | None,
            epsilon: float,
            scale: Tensor,
            fp8_dtype: torch.dtype = torch.float8_e4m3fn,
        ) -> tuple[Tensor, Tensor]:
            out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
            residual_out = torch.empty_like(x, memory_format=torch.contiguous_format)
            normalize(x, x_residual, weight, scale, out, residual_out, epsilon, True)
            return out, residual_out

        self.op = define_kernel_op(
            f"{namespace}::rms_norm_static_fp8_quant",
            traced_op,
            fake=ops.rms_norm_static_fp8_quant.native_fn,
        )
        self.residual_op = define_kernel_op(
            f"{namespace}::fused_add_rms_norm_static_fp8_quant",
            traced_residual_op,
            fake=ops.fused_add_rms_norm_static_fp8_quant.native_fn,
        )

    def _plan(
        self,
        n_cols: int,
        has_residual: bool,
        has_weight: bool,
        fp8_dtype: torch.dtype,
        pdl: bool,
        decode: bool,
    ) -> _Plan:
        launch = self.launch
        config = launch.table.config(n_cols, 1 if decode else None)
        options = launch.launch_options(config, pdl)
        limit, _ = fp8_limits(fp8_dtype)
        flags = (has_residual, has_weight, limit, launch.stream, launch.read_once, launch.reused,
                 launch.exact_division, pdl)  # fmt: skip
        if config.looped:
            bound = self.looped_launcher.bind(n_cols, config.block, *flags, **options)
        else:
            bound = self.rows_launcher.bind(n_cols, config.block, config.rows, *flags, **options)
        key = (n_cols, has_residual, has_weight, fp8_dtype, pdl, decode)
        plan = self.plans[key] = (launch, config, bound)
        return plan

    def normalize(
        self,
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
        ``residual_out``): both new and contiguous, with ``x``'s shape; ``x`` and ``residual`` in
        row layout. ``traced`` launches the way ``torch.compile`` traces (inside an operator);
        a symbolic width is specialized (it is a constexpr)."""
        n_cols = int(x.shape[-1]) if traced else x.shape[-1]
        n_rows = x.numel() // n_cols if n_cols else 0
        if n_rows == 0:
            return
        launch = self.launch
        pdl = launch.uses_pdl(traced)
        decode = not traced and launch.table.is_decode(n_rows)  # a traced count may be symbolic
        key = (n_cols, residual is not None, weight is not None, out.dtype, pdl, decode)
        plan = self.plans.get(key)
        if plan is None or plan[0] is not launch:
            plan = self._plan(*key)
        _, config, bound = plan
        target = fp8_store_target(out)
        run = bound.traced if traced else bound.launch
        residual_stride = row_stride(residual) if residual is not None else 0
        args = (x, row_stride(x), residual, residual_stride, weight, scale, target, residual_out)
        if config.looped:
            run((n_rows,), *args, epsilon)
        else:
            run(config.grid(n_rows), *args, n_rows, epsilon)
        fp8_store_finish(out, target)

    def rms_norm_static_fp8_quant(
        self,
        x: Tensor,
        weight: Tensor | None,
        epsilon: float,
        scale: Tensor,
        fp8_dtype: torch.dtype = torch.float8_e4m3fn,
    ) -> Tensor:
        """The fused provider of ``rms_norm_static_fp8_quant``."""
        if tracing():
            traced: Tensor = self.op(x, weight, epsilon, scale, fp8_dtype)
            return traced
        out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
        self.normalize(x, None, weight, scale, out, None, epsilon, False)
        return out

    def fused_add_rms_norm_static_fp8_quant(
        self,
        x: Tensor,
        x_residual: Tensor,
        weight: Tensor | None,
        epsilon: float,
        scale: Tensor,
        fp8_dtype: torch.dtype = torch.float8_e4m3fn,
    ) -> tuple[Tensor, Tensor]:
        """The fused provider of ``fused_add_rms_norm_static_fp8_quant``: new ``(q,
        residual_out)``."""
        if tracing():
            traced: tuple[Tensor, Tensor] = self.residual_op(
                x, x_residual, weight, epsilon, scale, fp8_dtype
            )
            return traced
        out = torch.empty(x.shape, dtype=fp8_dtype, device=x.device)
        residual_out = torch.empty_like(x, memory_format=torch.contiguous_format)
        self.normalize(x, x_residual, weight, scale, out, residual_out, epsilon, False)
        return out, residual_out

    def register(
        self,
        provider: str,
        supported: Callable[[], bool],
        unsupported_reason: Callable[[], str | None],
    ) -> None:
        """Register both providers under the name ``provider``."""
        ops.rms_norm_static_fp8_quant.register_impl(
            provider,
            supported=supported,
            unsupported_reason=unsupported_reason,
            supports_args=rms_norm_static_fp8_quant_supports_args(self.formats),
        )(self.rms_norm_static_fp8_quant)
        ops.fused_add_rms_norm_static_fp8_quant.register_impl(
            provider,
            supported=supported,
            unsupported_reason=unsupported_reason,
            supports_args=fused_add_rms_norm_static_fp8_quant_supports_args(self.formats),
        )(self.fused_add_rms_norm_static_fp8_quant)
