"""The ``cuda`` providers of ``rms_norm`` and ``fused_add_rms_norm``.

Eager calls launch the Triton kernels of :mod:`ir_kernels_cuda.kernels.norm` through
:class:`~ir_op.triton.KernelLauncher` (a few microseconds of host time); while compiling or
tracing they call the ``torch.ops.ir_cuda`` operators defined here instead, which
``torch.compile`` sees through (see :func:`ir_op.triton.define_kernel_op`).

Arguments the kernels take (``supports_args``): fp16, bf16 or fp32 activations on the platform's
device in row layout (last dimension contiguous, any row stride); a weight that is ``None`` or a
contiguous ``[hidden]`` vector of the same dtype; any valid ``variance_size``. For
``fused_add_rms_norm`` the residual matches ``x`` in shape and dtype, and rows do not overlap
(the in-place provider writes them).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda.kernels.norm import rms_norm_looped_kernel, rms_norm_rows_kernel
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


# -- providers ----------------------------------------------------------------------------------


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
