"""The ``supports_args`` predicates of the row-wise Triton kernels, shared by kernel sets.

Every Triton kernel set writes its own kernel bodies, tuned for its hardware, but the arguments
those bodies take are the same wherever they run: activations in :data:`FLOAT_DTYPES` on the
platform's device in row layout (:mod:`ir_triton.rows`), and each op's extra conditions below.
A kernel set registers these functions as its providers' ``supports_args`` (the fp8 one through
:func:`static_fp8_quant_supports_args`, since the fp8 formats a GPU converts to differ by
vendor and generation).

Each returns a Python ``bool`` for real tensors, FakeTensors and symbolic shapes and never reads
the number of rows. Arguments they reject go to the next provider in the priority (native,
which raises the errors of bad arguments).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import torch
from torch import Tensor

from ir_op.ops.activation import GELU_APPROXIMATIONS
from ir_triton.rows import (
    FLOAT_DTYPES,
    NOT_ARGUMENTS,
    has_row_layout,
    is_row_vector,
    on_platform_device,
    rows_are_disjoint,
)


def on_device_of(t: Tensor, x: Tensor) -> bool:
    """Whether ``t`` is on ``x``'s device, ``x`` being on the platform's: the same kind of device
    (``get_device()`` is -1 for CPU and meta tensors alike) and the same index."""
    return on_platform_device(t) and t.get_device() == x.get_device()


def is_static_scale(scale: object, x: Tensor) -> bool:
    """Whether ``scale`` is a one-element float32 tensor on ``x``'s device (a static scale)."""
    return (
        isinstance(scale, Tensor)
        and scale.dtype == torch.float32
        and bool(scale.numel() == 1)
        and on_device_of(scale, x)
    )


def takes_rows(x: Tensor) -> bool:
    """A float activation on the platform's device that reads as rows (any row stride)."""
    return x.dtype in FLOAT_DTYPES and on_platform_device(x) and has_row_layout(x)


# The norms' checks run on the dispatch path of every eager call, so they are written out: each
# helper call costs host time. The common cases (contiguous tensors, a weight, no
# variance_size) are tested inline first.


def _weight_ok(weight: Tensor, x: Tensor) -> bool:
    """A contiguous ``[hidden]`` vector of ``x``'s dtype on ``x``'s device (a meta or CPU weight
    has the index of an emulated platform's CPU tensors, so the kind of device is checked too)."""
    return is_row_vector(weight, x.shape[-1], x.dtype) and on_device_of(weight, x)


def _norm_weight_ok(weight: Tensor, x: Tensor) -> bool:
    """A contiguous ``[hidden]`` vector of any kernel dtype (the norms apply vLLM's rule for a
    weight of another dtype than ``x``) on ``x``'s device."""
    return (
        weight.dtype in FLOAT_DTYPES
        and weight.dim() == 1
        and bool(weight.numel() == x.shape[-1])
        and weight.is_contiguous()
        and weight.get_device() == x.get_device()
    )


def _variance_size_ok(variance_size: int | None, x: Tensor) -> bool:
    return type(variance_size) is int and bool(0 < variance_size <= x.shape[-1])


def _writable_rows(t: Tensor) -> bool:
    """Row layout with rows that do not overlap (a contiguous tensor always has both)."""
    return has_row_layout(t) and rows_are_disjoint(t)


def rms_norm_supports_args(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    """``x`` as :func:`takes_rows`; a weight that is ``None`` or a contiguous ``[hidden]`` of
    fp16, bf16 or fp32 on its device; any valid ``variance_size``."""
    try:
        return (
            x.dtype in FLOAT_DTYPES
            and on_platform_device(x)
            and x.dim() != 0
            and (x.is_contiguous() or has_row_layout(x))
            and (weight is None or _norm_weight_ok(weight, x))
            and (variance_size is None or _variance_size_ok(variance_size, x))
        )
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


def fused_add_rms_norm_supports_args(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> bool:
    """As :func:`rms_norm_supports_args`, and a residual of ``x``'s shape, dtype and device in
    row layout; neither has overlapping rows (an in-place provider writes them)."""
    try:
        return (
            x.dtype in FLOAT_DTYPES
            and x_residual.dtype == x.dtype
            and on_platform_device(x)
            and x_residual.get_device() == x.get_device()
            and bool(x_residual.shape == x.shape)
            and x.dim() != 0
            and (x.is_contiguous() or _writable_rows(x))
            and (x_residual.is_contiguous() or _writable_rows(x_residual))
            and (weight is None or _norm_weight_ok(weight, x))
            and (variance_size is None or _variance_size_ok(variance_size, x))
        )
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


def _even_width(x: Tensor) -> bool:
    return bool(x.shape[-1] % 2 == 0)


def silu_and_mul_supports_args(x: Tensor) -> bool:
    """``x`` as :func:`takes_rows`, of even width (``[gate | up]``)."""
    try:
        return takes_rows(x) and _even_width(x)
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


def gelu_and_mul_supports_args(x: Tensor, approximate: str = "none") -> bool:
    """As :func:`silu_and_mul_supports_args`, with ``approximate`` ``"none"`` or ``"tanh"``."""
    try:
        return approximate in GELU_APPROXIMATIONS and takes_rows(x) and _even_width(x)
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


def gelu_and_mul_sparse_supports_args(
    x: Tensor, std_multiplier: float, approximate: str = "none"
) -> bool:
    """As :func:`gelu_and_mul_supports_args` (``std_multiplier`` is any float)."""
    try:
        return approximate in GELU_APPROXIMATIONS and takes_rows(x) and _even_width(x)
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


Fp8Formats = Callable[[Tensor], Collection[torch.dtype]]
"""The fp8 formats a kernel set's quantization kernels write for activations on ``x``'s device."""


def static_fp8_quant_supports_args(
    formats: Fp8Formats,
) -> Callable[[Tensor, Tensor, torch.dtype], bool]:
    """The ``supports_args`` of a ``static_scaled_fp8_quant`` provider that writes ``formats``.

    It takes ``x`` as :func:`takes_rows` (any shape with at least one dimension), a one-element
    float32 ``scale`` on ``x``'s device, and an ``fp8_dtype`` in ``formats(x)``.
    """

    def static_scaled_fp8_quant_supports_args(
        x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = torch.float8_e4m3fn
    ) -> bool:
        try:
            return (
                isinstance(fp8_dtype, torch.dtype)
                and takes_rows(x)
                and is_static_scale(scale, x)
                and fp8_dtype in formats(x)
            )
        except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
            return False

    return static_scaled_fp8_quant_supports_args


def _takes_fp8_dtype(fp8_dtype: object, formats: Fp8Formats, x: Tensor) -> bool:
    return isinstance(fp8_dtype, torch.dtype) and fp8_dtype in formats(x)


def dynamic_fp8_quant_supports_args(
    formats: Fp8Formats,
) -> Callable[[Tensor, bool, Tensor | None, torch.dtype], bool]:
    """The ``supports_args`` of a ``dynamic_scaled_fp8_quant`` provider that writes ``formats``.

    It takes ``x`` as :func:`takes_rows` (any shape with at least one dimension), a bool
    ``per_token``, a ``scale_ub`` that is ``None`` or a one-element float32 tensor on ``x``'s
    device, and an ``fp8_dtype`` in ``formats(x)``.
    """

    def dynamic_scaled_fp8_quant_supports_args(
        x: Tensor,
        per_token: bool = False,
        scale_ub: Tensor | None = None,
        fp8_dtype: torch.dtype = torch.float8_e4m3fn,
    ) -> bool:
        try:
            return (
                isinstance(per_token, bool)
                and takes_rows(x)
                and (scale_ub is None or is_static_scale(scale_ub, x))
                and _takes_fp8_dtype(fp8_dtype, formats, x)
            )
        except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
            return False

    return dynamic_scaled_fp8_quant_supports_args


def rms_norm_static_fp8_quant_supports_args(
    formats: Fp8Formats,
) -> Callable[[Tensor, Tensor | None, float, Tensor, torch.dtype], bool]:
    """The ``supports_args`` of a fused ``rms_norm_static_fp8_quant`` provider that writes
    ``formats``: ``x`` and ``weight`` as :func:`rms_norm_supports_args`, a one-element float32
    ``scale`` on ``x``'s device and an ``fp8_dtype`` in ``formats(x)``."""

    def rms_norm_static_fp8_quant_supports_args(
        x: Tensor,
        weight: Tensor | None,
        epsilon: float,
        scale: Tensor,
        fp8_dtype: torch.dtype = torch.float8_e4m3fn,
    ) -> bool:
        try:
            return (
                takes_rows(x)
                and (weight is None or _weight_ok(weight, x))
                and is_static_scale(scale, x)
                and _takes_fp8_dtype(fp8_dtype, formats, x)
            )
        except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
            return False

    return rms_norm_static_fp8_quant_supports_args


def fused_add_rms_norm_static_fp8_quant_supports_args(
    formats: Fp8Formats,
) -> Callable[[Tensor, Tensor, Tensor | None, float, Tensor, torch.dtype], bool]:
    """As :func:`rms_norm_static_fp8_quant_supports_args`, and a residual of ``x``'s shape,
    dtype and device in row layout (the outputs are new tensors: rows may overlap)."""
    takes_norm = rms_norm_static_fp8_quant_supports_args(formats)

    def fused_add_rms_norm_static_fp8_quant_supports_args(
        x: Tensor,
        x_residual: Tensor,
        weight: Tensor | None,
        epsilon: float,
        scale: Tensor,
        fp8_dtype: torch.dtype = torch.float8_e4m3fn,
    ) -> bool:
        try:
            return (
                takes_norm(x, weight, epsilon, scale, fp8_dtype)
                and x_residual.dtype == x.dtype
                and on_device_of(x_residual, x)
                and bool(x_residual.shape == x.shape)
                and has_row_layout(x_residual)
            )
        except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
            return False

    return fused_add_rms_norm_static_fp8_quant_supports_args


def silu_and_mul_static_fp8_quant_supports_args(
    formats: Fp8Formats,
) -> Callable[[Tensor, Tensor, torch.dtype], bool]:
    """The ``supports_args`` of a fused ``silu_and_mul_static_fp8_quant`` provider that writes
    ``formats``: ``x`` as :func:`silu_and_mul_supports_args`, a one-element float32 ``scale`` on
    ``x``'s device and an ``fp8_dtype`` in ``formats(x)``."""

    def silu_and_mul_static_fp8_quant_supports_args(
        x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = torch.float8_e4m3fn
    ) -> bool:
        try:
            return (
                takes_rows(x)
                and _even_width(x)
                and is_static_scale(scale, x)
                and _takes_fp8_dtype(fp8_dtype, formats, x)
            )
        except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
            return False

    return silu_and_mul_static_fp8_quant_supports_args
