"""``rms_norm`` and ``fused_add_rms_norm`` in Triton, for every Triton kernel set (ir-kernels-cuda,
-rocm and -xpu).

Semantics are those of ``ir_op.ops.rms_norm`` / ``fused_add_rms_norm``: the (residual) sum and
the mean of squares (over the first ``variance_size`` columns, all by default) are float32; as in
vLLM IR, the normalized row is rounded to the weight's dtype, multiplied by the weight (in
float32, on the rounded values: exact for 16-bit operands, so the same result as a product in
the weight's dtype once rounded to it), and the product cast to the output dtype (one rounding
more only where the weight's dtype is not the output's; a float32 weight rounds once);
``residual_out`` is the sum rounded to its dtype. Weights may be fp16, bf16 or fp32 whatever
``x``'s dtype.

Two shapes of kernel, chosen by the kernel set's :class:`~ir_triton.configs.RowTable`:

- ``rms_norm_rows_kernel`` / ``fused_add_rms_norm_rows_kernel`` (one body, ``rms_norm_rows``): a
  ``[ROWS, BLOCK]`` tile held in registers, rows up to the table's ``max_block`` wide (short
  rows packed several per program);
- ``rms_norm_looped_kernel``: one program per wider row, in ``BLOCK``-wide chunks: a first pass
  for the statistic (default caching, so that the second finds the row in cache), a second that
  re-reads the inputs (the last read: the launch's read-once hints), normalizes and writes.

Why one body for every vendor: the arithmetic is the op's, float32 statistics and the op's two
roundings, and each row is contiguous, read in whole vectors; offsets are 64-bit per row (a row
times its stride can pass 2**31 elements). Every load, the weight's too, is issued before the
reduction, so that their latencies overlap (what a decode-sized launch waits on). What differs
by hardware is the tiles, the warps (wavefronts, sub-groups), the other launch options, the
cache and eviction hints of the loads and programmatic dependent launch, which a kernel set
gives in a :class:`~ir_triton.configs.RowLaunch` (NVIDIA: ``evict_first`` for the read-once
activations, ``evict_last`` for the weight, PDL on sm_90+; AMD: streaming ``.cg`` loads).

Eager launches go through bound launchers (:meth:`~ir_triton.KernelLauncher.bind`), one per
width, set of options and launch size (decode launches take the table's decode choices), so a
call pays only for the key of its pointers and the driver call.

Outputs may alias inputs (the in-place provider): every element is read before the program that
owns its row writes it. Row widths (``N_COLS``) and the statistic's width (``VARIANCE_SIZE``) are
constexprs: a model has one or two, and each runtime argument costs host time per launch; loops
over chunks need a constexpr count anyway (loops with a runtime bound fail in Triton 3.6's
interpreter under NumPy 2.4).

Arguments the kernels take (:func:`~ir_triton.supports.rms_norm_supports_args`,
:func:`~ir_triton.supports.fused_add_rms_norm_supports_args`): fp16, bf16 or fp32 activations
on the platform's device in row layout (last dimension contiguous, any row stride); a weight that
is ``None`` or a contiguous ``[hidden]`` vector of fp16, bf16 or fp32; a residual of ``x``'s
shape and dtype in row layout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_op import ops
from ir_triton.configs import RowLaunch
from ir_triton.kernel_ops import define_kernel_op, tracing
from ir_triton.launcher import BoundLauncher, KernelLauncher
from ir_triton.pdl import wait_for_previous_kernel
from ir_triton.rows import row_stride
from ir_triton.supports import fused_add_rms_norm_supports_args, rms_norm_supports_args

# -- Triton kernels -------------------------------------------------------------------------------
#
# Every kernel takes, after its shape constexprs, the launch's load hints (STREAM: the cache
# modifier of read-once loads; READ_ONCE and REUSED: eviction policies of read-once data and of
# the weight, which every program reads) and USE_PDL (wait for the previous kernel first).


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
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    REUSED: tl.constexpr,
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
    x = tl.load(
        x_ptr + rows * x_row_stride + cols_2d,
        mask=mask,
        other=0.0,
        cache_modifier=STREAM,
        eviction_policy=READ_ONCE,
    )
    if HAS_RESIDUAL:
        residual = tl.load(
            residual_ptr + rows * residual_row_stride + cols_2d,
            mask=mask,
            other=0.0,
            cache_modifier=STREAM,
            eviction_policy=READ_ONCE,
        )
    if HAS_WEIGHT:
        weight = tl.load(weight_ptr + cols, mask=col_mask, other=0.0, eviction_policy=REUSED)
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
    if HAS_WEIGHT:  # vLLM's rule: round to the weight's dtype, multiply there, cast to out's
        out = (x * rstd[:, None]).to(weight_ptr.dtype.element_ty).to(tl.float32)
        out = (out * weight.to(tl.float32)[None, :]).to(weight_ptr.dtype.element_ty)
        out = out.to(out_ptr.dtype.element_ty)
    else:
        out = (x * rstd[:, None]).to(out_ptr.dtype.element_ty)
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
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    REUSED: tl.constexpr,
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
        STREAM,
        READ_ONCE,
        REUSED,
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
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    REUSED: tl.constexpr,
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
        STREAM,
        READ_ONCE,
        REUSED,
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
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    REUSED: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """One row per program, in ``BLOCK``-wide chunks; the outputs may be the inputs."""
    if USE_PDL:
        wait_for_previous_kernel()
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_row_stride
    out_row = out_ptr + row * out_row_stride

    # First pass: default caching, so the second pass finds the row in cache.
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

    # Second pass: the last read of the row, with the launch's read-once hints.
    for chunk in range((N_COLS + BLOCK - 1) // BLOCK):
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
                residual_out_ptr + row * residual_out_row_stride + cols,
                x.to(residual_out_ptr.dtype.element_ty),
                mask=mask,
            )
        if HAS_WEIGHT:
            weight = tl.load(weight_ptr + cols, mask=mask, other=0.0, eviction_policy=REUSED)
            out = (x * rstd).to(weight_ptr.dtype.element_ty).to(tl.float32)
            out = (out * weight.to(tl.float32)).to(weight_ptr.dtype.element_ty)
            out = out.to(out_ptr.dtype.element_ty)
        else:
            out = (x * rstd).to(out_ptr.dtype.element_ty)
        tl.store(out_row + cols, out, mask=mask)


# -- operators and providers ----------------------------------------------------------------------


def _new_like(x: Tensor) -> Tensor:
    """A new contiguous tensor like ``x`` (``empty_like`` keeps a contiguous tensor's layout;
    its ``memory_format`` argument costs host time, so it is given only where needed)."""
    if x.is_contiguous():
        return torch.empty_like(x)
    return torch.empty_like(x, memory_format=torch.contiguous_format)


_Plan = tuple[RowLaunch, int, BoundLauncher]
"""(the launch it was made for, rows per program (0: the looped kernel), the bound launch)."""


def _writes_its_arguments_only(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> None:
    """Fake kernel of the in-place operator: it returns nothing and allocates nothing."""


class RmsNormProviders:
    """A kernel set's ``rms_norm`` and ``fused_add_rms_norm`` operators and providers on this
    module's kernels, launched with ``launch``.

    It defines ``torch.ops.<namespace>.rms_norm``, ``fused_add_rms_norm`` and
    ``fused_add_rms_norm_inplace`` (which mutates ``x`` and ``x_residual``), which the providers
    call while :func:`~ir_triton.tracing`; :meth:`register` registers the providers.
    :attr:`launch` is read on every call, so a test or a benchmark may replace it.
    """

    def __init__(self, namespace: str, launch: RowLaunch) -> None:
        self.launch = launch
        self.rows_launcher = KernelLauncher(rms_norm_rows_kernel)
        self.fused_rows_launcher = KernelLauncher(fused_add_rms_norm_rows_kernel)
        self.looped_launcher = KernelLauncher(rms_norm_looped_kernel)
        self.plans: dict[tuple[int, int | None, bool, bool, bool, bool], _Plan] = {}
        """Bound launches by (width, variance_size, weight?, residual?, PDL?, decode?), made
        once; one made for another :attr:`launch` is made again."""
        normalize = self.normalize

        def traced_op(
            x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
        ) -> Tensor:
            out = _new_like(x)
            normalize(x, None, weight, out, None, epsilon, variance_size, True)
            return out

        def traced_residual_op(
            x: Tensor,
            x_residual: Tensor,
            weight: Tensor | None,
            epsilon: float,
            variance_size: int | None = None,
        ) -> tuple[Tensor, Tensor]:
            out, residual_out = _new_like(x), _new_like(x)
            normalize(x, x_residual, weight, out, residual_out, epsilon, variance_size, True)
            return out, residual_out

        def traced_inplace_op(
            x: Tensor,
            x_residual: Tensor,
            weight: Tensor | None,
            epsilon: float,
            variance_size: int | None = None,
        ) -> None:
            normalize(x, x_residual, weight, x, x_residual, epsilon, variance_size, True)

        self.op = define_kernel_op(f"{namespace}::rms_norm", traced_op, fake=ops.rms_norm.native_fn)
        self.residual_op = define_kernel_op(
            f"{namespace}::fused_add_rms_norm",
            traced_residual_op,
            fake=ops.fused_add_rms_norm.native_fn,
        )
        self.inplace_op = define_kernel_op(
            f"{namespace}::fused_add_rms_norm_inplace",
            traced_inplace_op,
            mutates_args=("x", "x_residual"),
            fake=_writes_its_arguments_only,
        )

    def _plan(
        self,
        n_cols: int,
        variance_size: int | None,
        has_weight: bool,
        has_residual: bool,
        pdl: bool,
        decode: bool,
    ) -> _Plan:
        """Kernel, constexprs and options for one row width, set of options and launch size,
        made once (``decode``: a launch of at most the table's ``decode_rows`` rows)."""
        launch = self.launch
        config = launch.table.config(n_cols, 1 if decode else None)
        stat_cols = n_cols if variance_size is None else variance_size
        options = dict(launch.options(config))
        if pdl:
            options["launch_pdl"] = True
        hints = (launch.stream, launch.read_once, launch.reused, pdl)
        if config.looped:
            bound = self.looped_launcher.bind(
                n_cols, stat_cols, config.block, has_residual, has_weight, *hints, **options
            )
            plan: _Plan = (launch, 0, bound)
        else:
            launcher = self.fused_rows_launcher if has_residual else self.rows_launcher
            bound = launcher.bind(
                n_cols, stat_cols, config.block, config.rows, has_weight, *hints, **options
            )
            plan = (launch, config.rows, bound)
        self.plans[n_cols, variance_size, has_weight, has_residual, pdl, decode] = plan
        return plan

    def normalize(
        self,
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
        ``traced`` launches the way ``torch.compile`` traces (inside an operator), without PDL;
        a symbolic width is specialized (it is a constexpr: one graph per width).

        On the eager path of every call: each line here costs host time.
        """
        shape = x.shape
        n_cols = shape[-1]
        if traced:
            n_cols = int(n_cols)
            variance_size = None if variance_size is None else int(variance_size)
        two_d = len(shape) == 2
        n_rows = shape[0] if two_d else (x.numel() // n_cols if n_cols else 0)
        if n_rows == 0 or n_cols == 0:
            return
        if (residual is None) != (residual_out is None):
            raise ValueError("normalize: pass both residual and residual_out, or neither")
        launch = self.launch
        pdl = not traced and launch.pdl is not None and launch.pdl()
        decode = not traced and n_rows <= launch.table.decode_rows  # a traced count may be symbolic
        has_weight, has_residual = weight is not None, residual is not None
        plan = self.plans.get((n_cols, variance_size, has_weight, has_residual, pdl, decode))
        if plan is None or plan[0] is not launch:
            plan = self._plan(n_cols, variance_size, has_weight, has_residual, pdl, decode)
        _, rows, bound = plan
        run = bound.traced if traced else bound.launch
        x_stride = x.stride()[0] if two_d else row_stride(x)
        if residual is None:
            if rows:
                run(((n_rows + rows - 1) // rows,), x, x_stride, weight, out, n_rows, epsilon)
            else:
                run((n_rows,), x, x_stride, None, 0, weight, out, n_cols, None, 0, epsilon)
            return
        # The outputs are the inputs (in place) or new contiguous tensors.
        residual_stride = row_stride(residual)
        out_stride = x_stride if out is x else row_stride(out)
        residual_out_stride = (
            residual_stride if residual_out is residual else row_stride(residual_out)  # type: ignore[arg-type]
        )
        if rows:
            run(
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
            run(
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

    def rms_norm(
        self, x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
    ) -> Tensor:
        """The provider of ``rms_norm``: a new contiguous output."""
        if tracing():
            traced: Tensor = self.op(x, weight, epsilon, variance_size)
            return traced
        out = _new_like(x)
        self.normalize(x, None, weight, out, None, epsilon, variance_size, False)
        return out

    def fused_add_rms_norm(
        self,
        x: Tensor,
        x_residual: Tensor,
        weight: Tensor | None,
        epsilon: float,
        variance_size: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Out of place: what the functional overload runs (no copies of the inputs)."""
        if tracing():
            traced: tuple[Tensor, Tensor] = self.residual_op(
                x, x_residual, weight, epsilon, variance_size
            )
            return traced
        out, residual_out = _new_like(x), _new_like(x)
        self.normalize(x, x_residual, weight, out, residual_out, epsilon, variance_size, False)
        return out, residual_out

    def fused_add_rms_norm_inplace(
        self,
        x: Tensor,
        x_residual: Tensor,
        weight: Tensor | None,
        epsilon: float,
        variance_size: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """In place (``maybe_inplace``): ``out`` into ``x``, the sum into ``x_residual``.

        The same bytes as the out-of-place kernel and no new buffers. When ``x`` and
        ``x_residual`` are one buffer, which cannot hold both results, it computes out of place
        (``maybe_inplace`` allows that).
        """
        if tracing():
            self.inplace_op(x, x_residual, weight, epsilon, variance_size)
            return x, x_residual
        if x.data_ptr() == x_residual.data_ptr():
            return self.fused_add_rms_norm(x, x_residual, weight, epsilon, variance_size)
        self.normalize(x, x_residual, weight, x, x_residual, epsilon, variance_size, False)
        return x, x_residual

    def register(
        self,
        provider: str,
        supported: Callable[[], bool],
        unsupported_reason: Callable[[], str | None],
    ) -> None:
        """Register both providers under the name ``provider`` (``fused_add_rms_norm`` in place,
        with :meth:`fused_add_rms_norm` as its functional form)."""
        ops.rms_norm.register_impl(
            provider,
            supported=supported,
            unsupported_reason=unsupported_reason,
            supports_args=rms_norm_supports_args,
        )(self.rms_norm)
        ops.fused_add_rms_norm.register_impl(
            provider,
            supported=supported,
            unsupported_reason=unsupported_reason,
            supports_args=fused_add_rms_norm_supports_args,
            inplace=True,
            functional=self.fused_add_rms_norm,
        )(self.fused_add_rms_norm_inplace)
