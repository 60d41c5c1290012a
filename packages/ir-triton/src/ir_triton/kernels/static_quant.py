"""``static_scaled_fp8_quant`` in Triton, for every Triton kernel set (cuda, rocm, xpu).

Semantics are those of ``ir_op.ops.static_scaled_fp8_quant``: ``x / scale`` in float32, divided
with ``div_rn`` (correctly rounded, as torch divides; or by a multiply with the reciprocal where
the launch's :attr:`~ir_triton.configs.RowLaunch.exact_division` is off), saturated to
``±fp8_max`` with NaN kept, then converted once, to nearest even, by the store into the fp8
output (the format comes from the output tensor; :mod:`ir_triton.fp8` says how that works under
Triton's interpreter). The output is a new contiguous tensor of ``x``'s shape.

Element-wise over ``[ROWS, BLOCK]`` tiles of the rows of ``x`` (any row stride). Why one body for
every vendor: the arithmetic is the op's and the conversion is the store's, compiled to each
GPU's instruction; the tiles, the launch options, the read-once hints, programmatic dependent
launch and the division mode differ by hardware, and a kernel set gives them in a
:class:`~ir_triton.configs.RowLaunch`.

:class:`Fp8ElementwiseProviders` is what every such op's provider does around its kernel (the
bound launch per width and format, the interpreter's fp8 stand-in, the operator for
``torch.compile``, the registration); :mod:`ir_triton.kernels.activation_quant` builds on it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_op import ops
from ir_op.impl import SupportsArgs
from ir_op.op import IrOp
from ir_triton.configs import RowConfig, RowLaunch
from ir_triton.fp8 import fp8_store_finish, fp8_store_target
from ir_triton.kernel_ops import define_kernel_op, tracing
from ir_triton.kernels.quant import divide, elementwise_grid, fp8_limits, quant_hints, saturate
from ir_triton.launcher import BoundLauncher, KernelLauncher
from ir_triton.pdl import wait_for_previous_kernel
from ir_triton.rows import row_stride
from ir_triton.supports import Fp8Formats, static_fp8_quant_supports_args


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def static_fp8_quant_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    scale_ptr,
    out_ptr,
    n_rows,
    N_COLS: tl.constexpr,
    FP8_MAX: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    STREAM: tl.constexpr,
    READ_ONCE: tl.constexpr,
    EXACT: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """``clamp(x / scale, -FP8_MAX, FP8_MAX)`` of this program's tile, converted on store."""
    if USE_PDL:
        wait_for_previous_kernel()
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
    scaled = saturate(divide(x.to(tl.float32), tl.load(scale_ptr), EXACT), FP8_MAX)
    tl.store(
        out_ptr + rows * N_COLS + cols[None, :], scaled.to(out_ptr.dtype.element_ty), mask=mask
    )


_Plan = tuple[RowLaunch, RowConfig, BoundLauncher]
"""(the launch it was made for, tile config, the bound launch) of one output width, fp8 format
and PDL choice."""


class Fp8ElementwiseProviders:
    """A kernel set's operator and provider for an op with a static scale whose kernel writes a
    new fp8 tensor element-wise, in ``[ROWS, BLOCK]`` tiles of its rows.

    A subclass names the op (:attr:`implements`), the kernel (:attr:`kernel`, taking
    ``(x, x_row_stride, scale, out, n_rows, WIDTH, FP8_MAX, BLOCK, ROWS, STREAM, READ_ONCE, EXACT,
    USE_PDL)`` with ``WIDTH`` the output's width: :func:`~ir_triton.kernels.quant.quant_hints`
    gives the last four), the argument check (:meth:`supports_args`) and the output
    (:meth:`new_output`). It defines ``torch.ops.<namespace>.<op>``, which the provider calls
    while :func:`~ir_triton.tracing`; :meth:`register` registers the provider. Each kernel
    set has its own launcher (its own compiled-kernel cache) and ``formats``, the fp8 formats its
    GPUs convert to.
    """

    implements: ClassVar[IrOp]
    kernel: ClassVar[Any]

    def __init__(self, namespace: str, launch: RowLaunch, formats: Fp8Formats) -> None:
        self.launch = launch
        self.formats = formats
        self.launcher = KernelLauncher(self.kernel)
        self.plans: dict[tuple[int, torch.dtype, bool], _Plan] = {}
        """Bound launches by (output width, fp8 format, PDL?): constexprs and options fixed,
        made once; one made for another :attr:`launch` is made again."""
        write, new_output = self.write, self.new_output

        def traced_op(
            x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = torch.float8_e4m3fn
        ) -> Tensor:
            out = new_output(x, fp8_dtype)
            write(x, scale, out, True)
            return out

        self.op = define_kernel_op(
            f"{namespace}::{self.implements.name}", traced_op, fake=self.implements.native_fn
        )

    def supports_args(self) -> SupportsArgs:
        """The provider's ``supports_args`` for the kernel set's :attr:`formats`."""
        raise NotImplementedError

    @staticmethod
    def new_output(x: Tensor, fp8_dtype: torch.dtype) -> Tensor:
        """The new contiguous fp8 output for ``x``."""
        raise NotImplementedError

    def _plan(self, width: int, fp8_dtype: torch.dtype, pdl: bool) -> _Plan:
        launch = self.launch
        config = launch.elementwise_config(width)
        limit, _ = fp8_limits(fp8_dtype)
        bound = self.launcher.bind(
            width, limit, config.block, config.rows, *quant_hints(launch, pdl),
            **launch.launch_options(config, pdl),
        )  # fmt: skip
        plan = self.plans[width, fp8_dtype, pdl] = (launch, config, bound)
        return plan

    def write(self, x: Tensor, scale: Tensor, out: Tensor, traced: bool) -> None:
        """Write the op's result for ``x`` into the new contiguous fp8 ``out``. ``traced``
        launches the way ``torch.compile`` traces (inside an operator), without PDL; a symbolic
        width is specialized (it is a constexpr: one graph per width)."""
        width = int(out.shape[-1]) if traced else out.shape[-1]
        n_rows = out.numel() // width if width else 0
        if n_rows == 0:
            return
        pdl = self.launch.uses_pdl(traced)
        plan = self.plans.get((width, out.dtype, pdl))
        if plan is None or plan[0] is not self.launch:
            plan = self._plan(width, out.dtype, pdl)
        _, config, bound = plan
        target = fp8_store_target(out)
        (bound.traced if traced else bound.launch)(
            elementwise_grid(config, n_rows, width), x, row_stride(x), scale, target, n_rows
        )
        fp8_store_finish(out, target)

    def provider(
        self, x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = torch.float8_e4m3fn
    ) -> Tensor:
        """The provider: a new fp8 tensor."""
        if tracing():
            traced: Tensor = self.op(x, scale, fp8_dtype)
            return traced
        out = self.new_output(x, fp8_dtype)
        self.write(x, scale, out, False)
        return out

    def register(
        self,
        provider: str,
        supported: Callable[[], bool],
        unsupported_reason: Callable[[], str | None],
    ) -> None:
        """Register :meth:`provider` as the op's provider ``provider``."""
        self.implements.register_impl(
            provider,
            supported=supported,
            unsupported_reason=unsupported_reason,
            supports_args=self.supports_args(),
        )(self.provider)


class StaticFp8QuantProviders(Fp8ElementwiseProviders):
    """A kernel set's ``static_scaled_fp8_quant`` operator and provider on
    :func:`static_fp8_quant_kernel`."""

    implements = ops.static_scaled_fp8_quant
    kernel = static_fp8_quant_kernel

    def supports_args(self) -> SupportsArgs:
        return static_fp8_quant_supports_args(self.formats)

    @staticmethod
    def new_output(x: Tensor, fp8_dtype: torch.dtype) -> Tensor:
        """Of ``x``'s shape."""
        return torch.empty_like(x, dtype=fp8_dtype, memory_format=torch.contiguous_format)
