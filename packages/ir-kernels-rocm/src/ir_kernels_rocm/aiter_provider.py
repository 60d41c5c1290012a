"""The ``aiter`` provider: AMD's AITER kernels for ``rms_norm`` and ``fused_add_rms_norm``.

Where the ``aiter`` package imports, ``rms_norm`` calls ``aiter.rms_norm(x, weight, epsilon)``
and ``fused_add_rms_norm`` calls ``aiter.rmsnorm2d_fwd_with_add(out, x, residual_in,
residual_out, weight, epsilon)``; both take 2-D ``[rows, hidden]`` activations, so the provider
flattens the leading dimensions first. Where it does not import, the provider is registered all
the same, unsupported, with the reason (``ir-op info`` shows it). On ROCm the platform's eager
default puts ``aiter`` before ``rocm`` when AITER is installed.

The calls are wrapped in operators of their own, ``torch.ops.ir_rocm.aiter_rms_norm`` and
``aiter_fused_add_rms_norm``, with fake kernels: AITER's kernels read raw pointers, which
neither Dynamo nor FakeTensors can trace, so while tracing (``torch.compile``, ir-compile's
lowering of the chosen impl) the providers call these operators, and Inductor keeps them as
opaque nodes. Eager calls skip the dispatcher and call AITER directly.

What the provider takes (``supports_args``), and why:

- fp16 or bf16 activations (the dtypes AITER's norm kernels are built for) on the platform's
  device;
- a weight of the activation's dtype, or ``None`` (AITER always multiplies by a weight: a cached
  vector of ones stands in, which gives the same result);
- inputs that flatten to 2-D *without a copy*: the last dimension contiguous and the leading
  ones collapsible into one row index with any row stride. A 3-D contiguous tensor or a padded
  2-D slice does; a per-head slice of a fused QKV (``qkv.view(t, heads, d)[:, :h]``) does not,
  and goes to the next provider rather than being copied;
- for ``fused_add_rms_norm``, a contiguous residual of ``x``'s shape and dtype (AITER writes
  ``residual_out`` densely and reads the residual that way);
- ``variance_size`` ``None`` or the full width (AITER normalizes over whole rows).

``fused_add_rms_norm`` has no in-place impl here: AITER's out-of-place call is the one whose
aliasing is documented, so ``maybe_inplace`` returns new tensors (which it allows).
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch
from torch import Tensor

from ir_op import ops
from ir_op.platforms import current_platform
from ir_op.platforms.rocm import AITER_PROVIDER
from ir_triton import tracing
from ir_triton.rows import NOT_ARGUMENTS, has_row_layout, is_row_vector, on_platform_device

PLATFORM = "rocm"
PROVIDED_OPS = ("rms_norm", "fused_add_rms_norm")
AITER_DTYPES = frozenset({torch.float16, torch.bfloat16})


def _import_aiter() -> tuple[ModuleType | None, str | None]:
    """``(aiter, None)``, or ``(None, why not)``. Imports it (slow the first time)."""
    try:
        return importlib.import_module("aiter"), None
    except ModuleNotFoundError as e:
        if e.name != "aiter":  # aiter is there, but something it imports is not
            return None, f"aiter failed to import: {type(e).__name__}: {e}"
        return None, "aiter is not installed (AMD's AITER library, github.com/ROCm/aiter)"
    except Exception as e:  # an installed aiter that fails at import (a missing GPU library...)
        return None, f"aiter failed to import: {type(e).__name__}: {e}"


def unsupported_reason() -> str | None:
    """Why the ``aiter`` provider cannot run here, or ``None`` when it can."""
    platform = current_platform()
    if platform.name != PLATFORM:
        return f"platform is {platform.name}, not {PLATFORM}"
    return _import_aiter()[1]


def supported() -> bool:
    return unsupported_reason() is None


def _aiter() -> ModuleType:
    module, reason = _import_aiter()
    if module is None:
        raise RuntimeError(f"the aiter provider was called, but {reason}")
    return module


# -- the second-level operators -----------------------------------------------------------------

_ones: dict[tuple[torch.device, torch.dtype, int], Tensor] = {}


def _weight_or_ones(weight: Tensor | None, x: Tensor) -> Tensor:
    """``weight``, or a ``[hidden]`` vector of ones of ``x``'s dtype on its device.

    The vector is cached, except while a CUDA graph is being captured: memory allocated then
    belongs to the graph's pool and must not outlive it.
    """
    if weight is not None:
        return weight
    key = (x.device, x.dtype, x.shape[-1])
    ones = _ones.get(key)
    if ones is None:
        ones = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)
        if not _capturing(x):
            _ones[key] = ones
    return ones


def _capturing(x: Tensor) -> bool:
    return x.is_cuda and torch.cuda.is_current_stream_capturing()


def _rms_norm_2d(x: Tensor, weight: Tensor | None, epsilon: float) -> Tensor:
    if x.numel() == 0:  # nothing to launch: AITER is not asked about empty inputs
        return torch.empty_like(x, memory_format=torch.contiguous_format)
    out: Tensor = _aiter().rms_norm(x, _weight_or_ones(weight, x), epsilon)
    return out


def _fused_add_rms_norm_2d(
    x: Tensor, x_residual: Tensor, weight: Tensor | None, epsilon: float
) -> tuple[Tensor, Tensor]:
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    residual_out = torch.empty_like(x, memory_format=torch.contiguous_format)
    if x.numel() == 0:
        return out, residual_out
    _aiter().rmsnorm2d_fwd_with_add(
        out, x, x_residual, residual_out, _weight_or_ones(weight, x), epsilon
    )
    return out, residual_out


@torch.library.custom_op("ir_rocm::aiter_rms_norm", mutates_args=())
def aiter_rms_norm(x: Tensor, weight: Tensor | None, epsilon: float) -> Tensor:
    """``aiter.rms_norm`` of a 2-D ``x`` (last dimension contiguous): a new contiguous tensor."""
    return _rms_norm_2d(x, weight, epsilon)


@aiter_rms_norm.register_fake
def _aiter_rms_norm_fake(x: Tensor, weight: Tensor | None, epsilon: float) -> Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("ir_rocm::aiter_fused_add_rms_norm", mutates_args=())
def aiter_fused_add_rms_norm(
    x: Tensor, x_residual: Tensor, weight: Tensor | None, epsilon: float
) -> tuple[Tensor, Tensor]:
    """``aiter.rmsnorm2d_fwd_with_add`` of 2-D ``x`` and ``x_residual``: new contiguous
    ``(out, residual_out)``."""
    return _fused_add_rms_norm_2d(x, x_residual, weight, epsilon)


@aiter_fused_add_rms_norm.register_fake
def _aiter_fused_add_rms_norm_fake(
    x: Tensor, x_residual: Tensor, weight: Tensor | None, epsilon: float
) -> tuple[Tensor, Tensor]:
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    return out, torch.empty_like(out)


# -- supports_args --------------------------------------------------------------------------------


def _takes(x: Tensor, weight: Tensor | None, variance_size: int | None) -> bool:
    return (
        x.dtype in AITER_DTYPES
        and on_platform_device(x)
        and has_row_layout(x)  # flattens to 2-D without a copy
        and (
            weight is None
            or (
                is_row_vector(weight, x.shape[-1], x.dtype)
                and weight.get_device() == x.get_device()
            )
        )
        and (variance_size is None or bool(variance_size == x.shape[-1]))
    )


def rms_norm_supports_args(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    try:
        return _takes(x, weight, variance_size)
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


def fused_add_rms_norm_supports_args(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> bool:
    try:
        return (
            _takes(x, weight, variance_size)
            and x_residual.dtype == x.dtype
            and x_residual.get_device() == x.get_device()
            and bool(x_residual.shape == x.shape)
            and x_residual.is_contiguous()
        )
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


# -- providers ------------------------------------------------------------------------------------


def _rows(t: Tensor) -> Tensor:
    """``t`` as ``[rows, hidden]``: a view, which ``supports_args`` guaranteed."""
    return t if t.dim() == 2 else t.view(-1, t.shape[-1])


def rms_norm_aiter(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    rows = _rows(x)
    out = (
        aiter_rms_norm(rows, weight, epsilon) if tracing() else _rms_norm_2d(rows, weight, epsilon)
    )
    return out.view(x.shape)


def fused_add_rms_norm_aiter(
    x: Tensor,
    x_residual: Tensor,
    weight: Tensor | None,
    epsilon: float,
    variance_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    rows, residual_rows = _rows(x), _rows(x_residual)
    if tracing():
        out, residual_out = aiter_fused_add_rms_norm(rows, residual_rows, weight, epsilon)
    else:
        out, residual_out = _fused_add_rms_norm_2d(rows, residual_rows, weight, epsilon)
    return out.view(x.shape), residual_out.view(x.shape)


def register() -> None:
    """Register the provider of both ops (supported or not); called once, at import."""
    ops.rms_norm.register_impl(
        AITER_PROVIDER,
        supported=supported,
        unsupported_reason=unsupported_reason,
        supports_args=rms_norm_supports_args,
    )(rms_norm_aiter)
    ops.fused_add_rms_norm.register_impl(
        AITER_PROVIDER,
        supported=supported,
        unsupported_reason=unsupported_reason,
        supports_args=fused_add_rms_norm_supports_args,
    )(fused_add_rms_norm_aiter)
