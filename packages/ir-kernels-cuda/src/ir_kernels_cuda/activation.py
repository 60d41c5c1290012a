"""The ``cuda`` provider of ``gelu_and_mul_sparse``.

Arguments the kernels take (``supports_args``): fp16, bf16 or fp32 ``x`` of even width on the
platform's device in row layout (last dimension contiguous, any row stride), and an
``approximate`` of ``"none"`` or ``"tanh"``. Others fall through to the next provider, and the
native implementation raises the errors.
"""

from __future__ import annotations

from torch import Tensor

from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda.kernels.activation import (
    gelu_and_mul_sparse_looped_kernel,
    gelu_and_mul_sparse_rows_kernel,
)
from ir_op import ops
from ir_op.ops.activation import GELU_APPROXIMATIONS
from ir_op.triton import NVIDIA_ROW_TABLE, KernelLauncher, RowTable, define_kernel_op, tracing
from ir_op.triton.rows import FLOAT_DTYPES, has_row_layout, on_platform_device, row_stride

ROW_TABLE: RowTable = NVIDIA_ROW_TABLE
"""Block and warp choices (a module global, so a benchmark can try another table)."""

SPARSE_ROWS_LAUNCHER = KernelLauncher(gelu_and_mul_sparse_rows_kernel)
SPARSE_LOOPED_LAUNCHER = KernelLauncher(gelu_and_mul_sparse_looped_kernel)


def launch_gelu_and_mul_sparse(
    x: Tensor, out: Tensor, std_multiplier: float, approximate: str, traced: bool
) -> None:
    """Write ``gelu_and_mul_sparse(x)`` into ``out`` (contiguous, ``[..., d]``)."""
    d = out.shape[-1]
    n_rows = out.numel() // d if d else 0
    if n_rows == 0:
        return
    config = ROW_TABLE.config(d)
    tanh = approximate == "tanh"
    if config.looped:
        launcher = SPARSE_LOOPED_LAUNCHER
        launch = launcher.traced if traced else launcher.launch
        launch(
            (n_rows,),
            x,
            row_stride(x),
            out,
            d,
            d,
            std_multiplier,
            config.block,
            (d + config.block - 1) // config.block,
            tanh,
            num_warps=config.num_warps,
        )
    else:
        launcher = SPARSE_ROWS_LAUNCHER
        launch = launcher.traced if traced else launcher.launch
        rows = config.rows
        launch(
            ((n_rows + rows - 1) // rows,),
            x,
            row_stride(x),
            out,
            d,
            n_rows,
            d,
            std_multiplier,
            config.block,
            rows,
            tanh,
            num_warps=config.num_warps,
        )


def gelu_and_mul_sparse_supports_args(
    x: Tensor, std_multiplier: float, approximate: str = "none"
) -> bool:
    return (
        x.dtype in FLOAT_DTYPES
        and on_platform_device(x)
        and has_row_layout(x)
        and bool(x.shape[-1] % 2 == 0)
        and approximate in GELU_APPROXIMATIONS
    )


def _gelu_and_mul_sparse_op(x: Tensor, std_multiplier: float, approximate: str = "none") -> Tensor:
    out = x.new_empty((*x.shape[:-1], x.shape[-1] // 2))
    launch_gelu_and_mul_sparse(x, out, std_multiplier, approximate, traced=True)
    return out


GELU_AND_MUL_SPARSE_OP = define_kernel_op(
    "ir_cuda::gelu_and_mul_sparse",
    _gelu_and_mul_sparse_op,
    fake=ops.gelu_and_mul_sparse.native_fn,
)


def gelu_and_mul_sparse_cuda(x: Tensor, std_multiplier: float, approximate: str = "none") -> Tensor:
    if tracing():
        traced: Tensor = GELU_AND_MUL_SPARSE_OP(x, std_multiplier, approximate)
        return traced
    out = x.new_empty((*x.shape[:-1], x.shape[-1] // 2))
    launch_gelu_and_mul_sparse(x, out, std_multiplier, approximate, traced=False)
    return out


ops.gelu_and_mul_sparse.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=gelu_and_mul_sparse_supports_args,
)(gelu_and_mul_sparse_cuda)
