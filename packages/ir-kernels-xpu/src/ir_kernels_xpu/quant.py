"""The ``xpu`` providers of ``static_scaled_fp8_quant`` (a Triton kernel for Intel GPUs) and
``dynamic_scaled_fp8_quant`` (the shared kernels of :mod:`ir_op.triton.quant`, launched with
:data:`~ir_kernels_xpu.configs.XE_ROW_LAUNCH`).

Semantics are those of ``ir_op.ops.static_scaled_fp8_quant``: ``x / scale`` in float32, divided
with ``tl.math.div_rn`` (correctly rounded, as torch divides: Intel's backend may otherwise
lower ``/`` to a faster, approximate division on some drivers), clamped to ``±fp8_max`` with NaN
kept (``where`` on comparisons, which NaN fails), then one conversion to ``float8_e4m3fn``,
rounding to nearest even. The output is a new contiguous tensor of ``x``'s shape.

Only ``float8_e4m3fn`` is taken (:data:`FP8_FORMATS`): it is the format Intel's backend converts
to (``fp8e4nv``); ``float8_e4m3fnuz`` is AMD's and is not among the backend's fp8 types. (The
ops define no e5m2 quantization, so there is none to provide.) Under Triton's interpreter the
kernel stores float32 and torch rounds it (:mod:`ir_op.triton.fp8` says why).

Element-wise over ``[ROWS, BLOCK]`` tiles of the rows of ``x`` (any row stride), with the
sub-groups and tiles of :data:`~ir_kernels_xpu.configs.XE_ROW_TABLE`.

Dynamic quantization (per tensor, per token, ``scale_ub``) has the same semantics and format;
its scales are ``amax / fp8_max`` rounded once (``div_rn``), as native's. Its body is shared with
the other Triton kernel sets because nothing in it is vendor-specific but the tiles and the
launch options (sub-group size, register-file mode), which :data:`XE_ROW_LAUNCH` gives.
"""

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_kernels_xpu._support import PROVIDER, supported, unsupported_reason
from ir_kernels_xpu.configs import XE_ROW_LAUNCH, XE_ROW_TABLE, launch_options
from ir_op import ops
from ir_op.ops._fp8 import fp8_max
from ir_op.triton import KernelLauncher, RowTable, define_kernel_op, tracing
from ir_op.triton.fp8 import fp8_store_finish, fp8_store_target
from ir_op.triton.quant import DynamicFp8QuantProviders
from ir_op.triton.rows import row_stride
from ir_op.triton.supports import static_fp8_quant_supports_args

FP8_FORMATS: frozenset[torch.dtype] = frozenset({torch.float8_e4m3fn})
"""The fp8 formats the kernel writes, on every Intel GPU and on the emulated platform."""


def fp8_formats(x: Tensor) -> frozenset[torch.dtype]:
    """The fp8 formats the xpu kernel writes for activations on ``x``'s device."""
    return FP8_FORMATS


# -- Triton kernel --------------------------------------------------------------------------------


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
):
    """``clamp(x / scale, -FP8_MAX, FP8_MAX)`` of this program's tile, converted on store."""
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = (rows < n_rows)[:, None] & (cols < N_COLS)[None, :]
    rows = rows.to(tl.int64)[:, None]
    x = tl.load(x_ptr + rows * x_row_stride + cols[None, :], mask=mask, other=0.0)
    scaled = tl.math.div_rn(x.to(tl.float32), tl.load(scale_ptr))
    clamped = tl.where(scaled > FP8_MAX, FP8_MAX, tl.where(scaled < -FP8_MAX, -FP8_MAX, scaled))
    tl.store(
        out_ptr + rows * N_COLS + cols[None, :], clamped.to(out_ptr.dtype.element_ty), mask=mask
    )


# -- launching ------------------------------------------------------------------------------------

ROW_TABLE: RowTable = XE_ROW_TABLE
"""Block and sub-group choices (a module global, so tests and benchmarks can try another)."""

QUANT_LAUNCHER = KernelLauncher(static_fp8_quant_kernel)
_FP8_MAX = {dtype: fp8_max(dtype) for dtype in FP8_FORMATS}


def launch_static_fp8_quant(x: Tensor, scale: Tensor, out: Tensor, traced: bool) -> None:
    """Write ``static_scaled_fp8_quant(x, scale, out.dtype)`` into the new contiguous ``out``."""
    n_cols = x.shape[-1]
    if traced:  # the width is a constexpr: a symbolic one is specialized (one graph per width)
        n_cols = int(n_cols)
    n_rows = x.numel() // n_cols if n_cols else 0
    if n_rows == 0:
        return
    config = ROW_TABLE.config(n_cols)
    target = fp8_store_target(out)
    launcher = QUANT_LAUNCHER
    (launcher.traced if traced else launcher.launch)(
        (config.grid(n_rows)[0], (n_cols + config.block - 1) // config.block),
        x,
        row_stride(x),
        scale,
        target,
        n_rows,
        n_cols,
        _FP8_MAX[out.dtype],
        config.block,
        config.rows,
        **launch_options(config),
    )
    fp8_store_finish(out, target)


def _new_output(x: Tensor, fp8_dtype: torch.dtype) -> Tensor:
    return torch.empty_like(x, dtype=fp8_dtype, memory_format=torch.contiguous_format)


def _static_fp8_quant_op(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = torch.float8_e4m3fn
) -> Tensor:
    out = _new_output(x, fp8_dtype)
    launch_static_fp8_quant(x, scale, out, traced=True)
    return out


STATIC_FP8_QUANT_OP = define_kernel_op(
    "ir_xpu::static_scaled_fp8_quant",
    _static_fp8_quant_op,
    fake=ops.static_scaled_fp8_quant.native_fn,
)


def static_scaled_fp8_quant_xpu(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = torch.float8_e4m3fn
) -> Tensor:
    if tracing():
        traced: Tensor = STATIC_FP8_QUANT_OP(x, scale, fp8_dtype)
        return traced
    out = _new_output(x, fp8_dtype)
    launch_static_fp8_quant(x, scale, out, traced=False)
    return out


ops.static_scaled_fp8_quant.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=static_fp8_quant_supports_args(fp8_formats),
)(static_scaled_fp8_quant_xpu)

DYNAMIC_QUANT = DynamicFp8QuantProviders("ir_xpu", XE_ROW_LAUNCH, fp8_formats)
dynamic_scaled_fp8_quant_xpu = DYNAMIC_QUANT.provider
DYNAMIC_QUANT.register(PROVIDER, supported, unsupported_reason)
