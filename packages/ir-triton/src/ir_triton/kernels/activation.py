"""The gated activations ``silu_and_mul``, ``gelu_and_mul`` and ``gelu_and_mul_sparse`` (Gemma3n's
sparse GeGLU) in Triton, for every Triton kernel set (ir-kernels-cuda, -rocm and -xpu).

Each input row is ``[gate | up]``, both ``D`` wide; the output is a new contiguous ``[..., D]``.
All math is float32 and rounded once to the output dtype, as in the native functions:

- SiLU is ``g / (1 + exp(-g))``;
- exact GELU is ``0.5 * g * (1 + erf(g / sqrt(2)))``;
- tanh GELU is computed as ``g * sigmoid(2 * u)`` with ``u = sqrt(2 / pi) * (g + 0.044715 g^3)``,
  which equals ``0.5 * g * (1 + tanh(u))`` without its cancellation for negative ``g``;
- the sparse GeGLU first subtracts each row's threshold ``mean + std * std_multiplier`` (mean and
  population standard deviation of the gate, two passes in float32; the square root rounded
  correctly, ``sqrt_rn``) and applies ``relu`` keeping NaN, as ``torch.relu`` does.

``silu_and_mul`` and ``gelu_and_mul`` are element-wise: one kernel over a 2-D grid of
``[ROWS, BLOCK]`` tiles (rows packed for short widths, column chunks for wide ones), with the
activation a constexpr. ``gelu_and_mul_sparse`` needs whole-row statistics: a one-block rows
kernel up to the table's ``max_block`` and a three-pass looped kernel beyond, whose first two
passes read with default caching so that the third (the last read: the launch's streaming hint)
finds the row in cache.

Why one body for every vendor: the arithmetic is the op's, and each row is contiguous, read in
whole vectors; what differs by hardware is the tiles, the warps (wavefronts, sub-groups), the
other launch options, the cache and eviction hints of the read-once loads, programmatic dependent
launch and the element-wise tiles (:attr:`~ir_triton.configs.RowLaunch.divisor_tiles`), which a
kernel set gives in a :class:`~ir_triton.configs.RowLaunch`. Eager launches go through bound
launchers, one per width, activation and launch size; the sparse GeGLU's decode launches (at
most the table's ``decode_rows`` rows) take its decode warps.

Arguments the kernels take (:mod:`ir_triton.supports`): fp16, bf16 or fp32 ``x`` of even
width on the platform's device in row layout (last dimension contiguous, any row stride);
``approximate`` ``"none"`` or ``"tanh"``.
"""

from __future__ import annotations

from collections.abc import Callable

import triton
import triton.language as tl
from torch import Tensor

from ir_op import ops
from ir_triton.configs import RowConfig, RowLaunch
from ir_triton.kernel_ops import define_kernel_op, tracing
from ir_triton.kernels.quant import elementwise_grid
from ir_triton.launcher import BoundLauncher, KernelLauncher
from ir_triton.pdl import wait_for_previous_kernel
from ir_triton.rows import row_stride
from ir_triton.supports import (
    gelu_and_mul_sparse_supports_args,
    gelu_and_mul_supports_args,
    silu_and_mul_supports_args,
)

SILU = 0
GELU_ERF = 1
GELU_TANH = 2
GELU_FORMS = {"none": GELU_ERF, "tanh": GELU_TANH}
"""The kernels' ``ACTIVATION`` constexpr for each ``approximate`` of GELU."""

# -- Triton kernels -------------------------------------------------------------------------------


@triton.jit  # type: ignore[untyped-decorator]
def activate(g, ACTIVATION: tl.constexpr):  # type: ignore[no-untyped-def]
    """SiLU or GELU of a float32 ``g`` (see the module docstring for the forms)."""
    if ACTIVATION == 0:
        return g / (1.0 + tl.exp(-g))
    elif ACTIVATION == 1:
        return 0.5 * g * (1.0 + tl.math.erf(g * 0.7071067811865476))
    else:
        u = 0.7978845608028654 * (g + 0.044715 * g * g * g)
        return g / (1.0 + tl.exp(-2.0 * u))


@triton.jit
def relu_keep_nan(v):  # type: ignore[no-untyped-def]
    return tl.where(v < 0.0, 0.0, v)


@triton.jit  # type: ignore[untyped-decorator]
def load_gate_and_up(gate_ptrs, D, mask, STREAM: tl.constexpr, READ_ONCE: tl.constexpr):  # type: ignore[no-untyped-def]
    """The gate and up values at ``gate_ptrs`` (up ``D`` further), read for the last time, as
    float32."""
    gate = tl.load(
        gate_ptrs, mask=mask, other=0.0, cache_modifier=STREAM, eviction_policy=READ_ONCE
    )
    up = tl.load(
        gate_ptrs + D, mask=mask, other=0.0, cache_modifier=STREAM, eviction_policy=READ_ONCE
    )
    return gate.to(tl.float32), up.to(tl.float32)


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def gated_activation_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    out_ptr,
    n_rows,
    D: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    ACTIVATION: tl.constexpr,
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """``activate(gate) * up`` for this program's ``[ROWS, BLOCK]`` tile of the output."""
    if USE_PDL:
        wait_for_previous_kernel()
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = (rows < n_rows)[:, None] & (cols < D)[None, :]
    rows = rows.to(tl.int64)[:, None]  # row * stride can pass 2**31 elements
    gate_ptrs = x_ptr + rows * x_row_stride + cols[None, :]
    gate, up = load_gate_and_up(gate_ptrs, D, mask, STREAM, READ_ONCE)
    out = activate(gate, ACTIVATION) * up
    tl.store(out_ptr + rows * D + cols[None, :], out.to(out_ptr.dtype.element_ty), mask=mask)


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
    ACTIVATION: tl.constexpr,
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """Sparse GeGLU of this program's ``[ROWS, BLOCK]`` tile of whole rows."""
    if USE_PDL:
        wait_for_previous_kernel()
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    mask = (rows < n_rows)[:, None] & (cols < D)[None, :]
    rows = rows.to(tl.int64)[:, None]
    gate_ptrs = x_ptr + rows * x_row_stride + cols[None, :]
    gate, up = load_gate_and_up(gate_ptrs, D, mask, STREAM, READ_ONCE)
    mean = tl.sum(gate, axis=1) / D
    centered = tl.where(mask, gate - mean[:, None], 0.0)
    std = tl.sqrt_rn(tl.sum(centered * centered, axis=1) / D)
    threshold = mean + std * std_multiplier
    out = activate(relu_keep_nan(gate - threshold[:, None]), ACTIVATION) * up
    tl.store(out_ptr + rows * D + cols[None, :], out.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit  # type: ignore[untyped-decorator]
def gelu_and_mul_sparse_looped_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    out_ptr,
    std_multiplier,
    D: tl.constexpr,
    BLOCK: tl.constexpr,
    ACTIVATION: tl.constexpr,
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """One row per program in ``BLOCK``-wide chunks: mean, spread, then the output."""
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
        gate, up = load_gate_and_up(gate_row + cols, D, mask, STREAM, READ_ONCE)
        out = activate(relu_keep_nan(gate - threshold), ACTIVATION) * up
        tl.store(out_row + cols, out.to(out_ptr.dtype.element_ty), mask=mask)


# -- operators and providers ----------------------------------------------------------------------


def _output_width(out: Tensor, traced: bool) -> int:
    d = out.shape[-1]
    return int(d) if traced else d  # a constexpr: a symbolic width is specialized when traced


_Plan = tuple[RowLaunch, RowConfig, BoundLauncher]
"""(the launch it was made for, its tiles, the bound launch)."""


def _new_output(x: Tensor) -> Tensor:
    return x.new_empty((*x.shape[:-1], x.shape[-1] // 2))


class GatedActivationProviders:
    """A kernel set's ``silu_and_mul``, ``gelu_and_mul`` and ``gelu_and_mul_sparse`` operators
    and providers on this module's kernels, launched with ``launch``.

    It defines ``torch.ops.<namespace>.silu_and_mul``, ``gelu_and_mul`` and
    ``gelu_and_mul_sparse``, which the providers call while :func:`~ir_triton.tracing`;
    :meth:`register` registers the providers. :attr:`launch` is read on every call, so a test or
    a benchmark may replace it.
    """

    def __init__(self, namespace: str, launch: RowLaunch) -> None:
        self.launch = launch
        self.gated_launcher = KernelLauncher(gated_activation_kernel)
        self.sparse_rows_launcher = KernelLauncher(gelu_and_mul_sparse_rows_kernel)
        self.sparse_looped_launcher = KernelLauncher(gelu_and_mul_sparse_looped_kernel)
        self.gated_plans: dict[tuple[int, int, bool], _Plan] = {}
        """Bound launches by (width, activation, PDL?), made once; one made for another
        :attr:`launch` is made again."""
        self.sparse_plans: dict[tuple[int, int, bool, bool], _Plan] = {}
        """Bound launches by (width, activation, PDL?, decode?)."""
        gated, sparse = self.gated, self.sparse

        def traced_silu_and_mul(x: Tensor) -> Tensor:
            out = _new_output(x)
            gated(x, out, SILU, True)
            return out

        def traced_gelu_and_mul(x: Tensor, approximate: str = "none") -> Tensor:
            out = _new_output(x)
            gated(x, out, GELU_FORMS[approximate], True)
            return out

        def traced_gelu_and_mul_sparse(
            x: Tensor, std_multiplier: float, approximate: str = "none"
        ) -> Tensor:
            out = _new_output(x)
            sparse(x, out, std_multiplier, approximate, True)
            return out

        self.silu_and_mul_op = define_kernel_op(
            f"{namespace}::silu_and_mul", traced_silu_and_mul, fake=ops.silu_and_mul.native_fn
        )
        self.gelu_and_mul_op = define_kernel_op(
            f"{namespace}::gelu_and_mul", traced_gelu_and_mul, fake=ops.gelu_and_mul.native_fn
        )
        self.gelu_and_mul_sparse_op = define_kernel_op(
            f"{namespace}::gelu_and_mul_sparse",
            traced_gelu_and_mul_sparse,
            fake=ops.gelu_and_mul_sparse.native_fn,
        )

    def _gated_plan(self, d: int, activation: int, pdl: bool) -> _Plan:
        launch = self.launch
        config = launch.elementwise_config(d)
        bound = self.gated_launcher.bind(
            d, config.block, config.rows, activation, launch.stream, launch.read_once, pdl,
            **launch.launch_options(config, pdl),
        )  # fmt: skip
        plan = self.gated_plans[d, activation, pdl] = (launch, config, bound)
        return plan

    def gated(self, x: Tensor, out: Tensor, activation: int, traced: bool) -> None:
        """Write ``activate(x[..., :d]) * x[..., d:]`` into ``out`` (a new contiguous
        ``[..., d]``); ``activation`` is :data:`SILU`, :data:`GELU_ERF` or :data:`GELU_TANH`.
        ``traced`` launches the way ``torch.compile`` traces (inside an operator), without
        PDL."""
        d = _output_width(out, traced)
        n_rows = out.numel() // d if d else 0
        if n_rows == 0:
            return
        pdl = self.launch.uses_pdl(traced)
        plan = self.gated_plans.get((d, activation, pdl))
        if plan is None or plan[0] is not self.launch:
            plan = self._gated_plan(d, activation, pdl)
        _, config, bound = plan
        (bound.traced if traced else bound.launch)(
            elementwise_grid(config, n_rows, d), x, row_stride(x), out, n_rows
        )

    def _sparse_plan(self, d: int, activation: int, pdl: bool, decode: bool) -> _Plan:
        launch = self.launch
        config = launch.table.config(d, 1 if decode else None)
        hints = (activation, launch.stream, launch.read_once, pdl)
        options = launch.launch_options(config, pdl)
        if config.looped:
            bound = self.sparse_looped_launcher.bind(d, config.block, *hints, **options)
        else:
            bound = self.sparse_rows_launcher.bind(d, config.block, config.rows, *hints, **options)
        plan = self.sparse_plans[d, activation, pdl, decode] = (launch, config, bound)
        return plan

    def sparse(
        self, x: Tensor, out: Tensor, std_multiplier: float, approximate: str, traced: bool
    ) -> None:
        """Write ``gelu_and_mul_sparse(x)`` into ``out`` (a new contiguous ``[..., d]``); eager
        launches of at most the table's ``decode_rows`` rows take its decode choices."""
        d = _output_width(out, traced)
        n_rows = out.numel() // d if d else 0
        if n_rows == 0:
            return
        launch = self.launch
        pdl = launch.uses_pdl(traced)
        decode = not traced and launch.table.is_decode(n_rows)  # a traced count may be symbolic
        key = (d, GELU_FORMS[approximate], pdl, decode)
        plan = self.sparse_plans.get(key)
        if plan is None or plan[0] is not launch:
            plan = self._sparse_plan(*key)
        _, config, bound = plan
        run = bound.traced if traced else bound.launch
        if config.looped:
            run((n_rows,), x, row_stride(x), out, std_multiplier)
        else:
            run(config.grid(n_rows), x, row_stride(x), out, n_rows, std_multiplier)

    def silu_and_mul(self, x: Tensor) -> Tensor:
        """The provider of ``silu_and_mul``."""
        if tracing():
            traced: Tensor = self.silu_and_mul_op(x)
            return traced
        out = _new_output(x)
        self.gated(x, out, SILU, False)
        return out

    def gelu_and_mul(self, x: Tensor, approximate: str = "none") -> Tensor:
        """The provider of ``gelu_and_mul``."""
        if tracing():
            traced: Tensor = self.gelu_and_mul_op(x, approximate)
            return traced
        out = _new_output(x)
        self.gated(x, out, GELU_FORMS[approximate], False)
        return out

    def gelu_and_mul_sparse(
        self, x: Tensor, std_multiplier: float, approximate: str = "none"
    ) -> Tensor:
        """The provider of ``gelu_and_mul_sparse``."""
        if tracing():
            traced: Tensor = self.gelu_and_mul_sparse_op(x, std_multiplier, approximate)
            return traced
        out = _new_output(x)
        self.sparse(x, out, std_multiplier, approximate, False)
        return out

    def register(
        self,
        provider: str,
        supported: Callable[[], bool],
        unsupported_reason: Callable[[], str | None],
    ) -> None:
        """Register the three providers under the name ``provider``."""
        for op, impl, supports_args in (
            (ops.silu_and_mul, self.silu_and_mul, silu_and_mul_supports_args),
            (ops.gelu_and_mul, self.gelu_and_mul, gelu_and_mul_supports_args),
            (ops.gelu_and_mul_sparse, self.gelu_and_mul_sparse, gelu_and_mul_sparse_supports_args),
        ):
            op.register_impl(
                provider,
                supported=supported,
                unsupported_reason=unsupported_reason,
                supports_args=supports_args,
            )(impl)
