"""The ``cuda`` providers of the gated activations ``silu_and_mul`` and ``gelu_and_mul``, and of
``silu_and_mul_static_fp8_quant`` (the activation fused with the static fp8 quantization that
follows it): one Triton kernel and its registration.

Semantics are those of ``ir_op.ops``: for ``x = [gate | up]`` (each ``D`` wide) the activation of
the gate and the product are float32, rounded once to ``x``'s dtype. The fused op rounds that
product to ``x``'s dtype too (the composition's intermediate), then multiplies it by the float32
reciprocal of the scale (rounded once per program: the product is within 1.5 float32 ulps of the
division, so at most one fp8 step away and almost always equal), saturates to ``±448`` keeping
NaN and casts to ``float8_e4m3fn`` (:mod:`ir_kernels_cuda._fp8`).

- SiLU: ``g / (1 + exp(-g))``.
- GELU, erf form: ``0.5 * g * (1 + erf(g / sqrt(2)))``.
- GELU, tanh form: ``g / (1 + exp(-2u))`` with ``u = sqrt(2 / pi) * (g + 0.044715 g**3)``, which
  is ``0.5 * g * (1 + tanh(u))`` without the cancellation of ``1 + tanh(u)`` for negative ``g``.

Infinities follow the formulas: ``-inf`` gates give NaN (``-inf * 0``), as torch's do.

The kernel is elementwise over the output: ``glu_kernel`` takes a ``[ROWS, BLOCK]`` tile of
outputs, reading the matching gate and up elements once (one HBM pass, 16-byte vectors for
aligned rows); rows are cut into ``BLOCK``-wide chunks along the grid's second axis, short rows
packed several per program (:mod:`ir_kernels_cuda._tiles`). ``D`` is a constexpr, like the norms'
row widths.

Arguments the kernel takes (``supports_args``): fp16, bf16 or fp32 ``x`` of even width on the
platform's device in row layout (last dimension contiguous, any row stride); for ``gelu_and_mul``
an ``approximate`` of ``"none"`` or ``"tanh"``; for the fused op a one-element float32 scale on
``x``'s device and ``fp8_dtype=torch.float8_e4m3fn``. Others go to the next provider.
"""

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_kernels_cuda._fp8 import FP8_DTYPE, FP8_MAX, clamp_for_fp8
from ir_kernels_cuda._support import PROVIDER, supported, unsupported_reason
from ir_kernels_cuda._tiles import elementwise_tile
from ir_kernels_cuda.pdl import PDL, pdl_enabled, wait_for_previous_kernel
from ir_op import ops
from ir_op.ops.activation import GELU_APPROXIMATIONS
from ir_triton import (
    NVIDIA_ROW_TABLE,
    BoundLauncher,
    KernelLauncher,
    RowTable,
    define_kernel_op,
    tracing,
)
from ir_triton.rows import (
    FLOAT_DTYPES,
    NOT_ARGUMENTS,
    has_row_layout,
    on_platform_device,
    row_stride,
)
from ir_triton.supports import is_static_scale

SILU = 0
GELU = 1
GELU_TANH = 2
_GELU_BY_APPROXIMATE = {"none": GELU, "tanh": GELU_TANH}

# -- Triton kernel --------------------------------------------------------------------------------


@triton.jit  # type: ignore[untyped-decorator]
def activate(g, ACTIVATION: tl.constexpr):  # type: ignore[no-untyped-def]
    """The gate's activation in float32 (see the module docstring for the formulas)."""
    if ACTIVATION == 0:
        return g / (1.0 + tl.exp(-g))
    elif ACTIVATION == 1:
        return 0.5 * g * (1.0 + tl.math.erf(g * 0.7071067811865476))
    else:
        u = 0.7978845608028654 * (g + 0.044715 * g * g * g)
        return g / (1.0 + tl.exp(-2.0 * u))


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_rows"]
)
def glu_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    x_row_stride,
    out_ptr,
    scale_ptr,
    n_rows,
    D: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    ACTIVATION: tl.constexpr,
    QUANT: tl.constexpr,
    FP8_MAX: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    """``activate(gate) * up`` for a ``[ROWS, BLOCK]`` tile of the contiguous ``[n_rows, D]`` out;
    with ``QUANT``, rounded to x's dtype and quantized with the scale at ``scale_ptr``."""
    if USE_PDL:
        wait_for_previous_kernel()
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = (rows < n_rows)[:, None] & (cols < D)[None, :]
    rows = rows.to(tl.int64)[:, None]  # row * stride can pass 2**31 elements
    gate_ptrs = x_ptr + rows * x_row_stride + cols[None, :]

    # read once: first out of L2
    gate = tl.load(gate_ptrs, mask=mask, other=0.0, eviction_policy="evict_first")
    up = tl.load(gate_ptrs + D, mask=mask, other=0.0, eviction_policy="evict_first")
    out = activate(gate.to(tl.float32), ACTIVATION) * up.to(tl.float32)
    if QUANT:
        inverse_scale = tl.math.div_rn(1.0, tl.load(scale_ptr))
        out = out.to(x_ptr.dtype.element_ty).to(tl.float32)  # the composition's intermediate
        out = clamp_for_fp8(out * inverse_scale, FP8_MAX)
    tl.store(out_ptr + rows * D + cols[None, :], out.to(out_ptr.dtype.element_ty), mask=mask)


# -- launching ------------------------------------------------------------------------------------

ELEMENTWISE_TABLE: RowTable = NVIDIA_ROW_TABLE
"""Rows per program and warps of the elementwise tiles (:mod:`ir_kernels_cuda._tiles`; a module
global, so a benchmark can try another table)."""

GLU_LAUNCHER = KernelLauncher(glu_kernel)

_Plan = tuple[RowTable, int, int, BoundLauncher]
"""(the table it was made with, rows per program, chunks per row, the bound launch)."""

_PLANS: dict[tuple[int, int, bool, bool], _Plan] = {}


def _plan(d: int, activation: int, quant: bool, pdl: bool) -> _Plan:
    """Tile, constexprs and options for one width, activation and output (made once)."""
    table = ELEMENTWISE_TABLE
    block, rows, chunks, num_warps = elementwise_tile(table, d)
    bound = GLU_LAUNCHER.bind(
        d, block, rows, activation, quant, FP8_MAX, pdl, num_warps=num_warps, launch_pdl=pdl
    )
    plan: _Plan = (table, rows, chunks, bound)
    _PLANS[d, activation, quant, pdl] = plan
    return plan


def launch_glu(x: Tensor, out: Tensor, scale: Tensor | None, activation: int, traced: bool) -> None:
    """Write the gated activation of ``x`` into ``out`` (a new contiguous ``[..., d]``), quantized
    with ``scale`` when given (``out`` is then fp8). ``traced`` launches the way
    ``torch.compile`` traces (inside an operator), without PDL."""
    d = out.shape[-1]
    if traced:  # the width is a constexpr: a symbolic one is specialized (one graph per width)
        d = int(d)
    n_rows = out.numel() // d if d else 0
    if n_rows == 0:
        return
    pdl = False if traced else PDL.enabled
    if pdl is None:
        pdl = pdl_enabled()
    quant = scale is not None
    plan = _PLANS.get((d, activation, quant, pdl))
    if plan is None or plan[0] is not ELEMENTWISE_TABLE:
        plan = _plan(d, activation, quant, pdl)
    _, rows, chunks, bound = plan
    (bound.traced if traced else bound.launch)(
        ((n_rows + rows - 1) // rows, chunks), x, row_stride(x), out, scale, n_rows
    )


# -- supports_args ------------------------------------------------------------------------------


def silu_and_mul_supports_args(x: Tensor) -> bool:
    try:
        return (
            x.dtype in FLOAT_DTYPES
            and on_platform_device(x)
            and has_row_layout(x)
            and bool(x.shape[-1] % 2 == 0)
        )
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


def gelu_and_mul_supports_args(x: Tensor, approximate: str = "none") -> bool:
    try:
        return approximate in GELU_APPROXIMATIONS and silu_and_mul_supports_args(x)
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


def silu_and_mul_static_fp8_quant_supports_args(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = FP8_DTYPE
) -> bool:
    try:
        return (
            fp8_dtype == FP8_DTYPE and silu_and_mul_supports_args(x) and is_static_scale(scale, x)
        )
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


# -- operators for torch.compile ----------------------------------------------------------------


def _gated_out(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    return x.new_empty((*x.shape[:-1], x.shape[-1] // 2), dtype=dtype)


def _silu_and_mul_op(x: Tensor) -> Tensor:
    out = _gated_out(x)
    launch_glu(x, out, None, SILU, traced=True)
    return out


def _gelu_and_mul_op(x: Tensor, approximate: str = "none") -> Tensor:
    out = _gated_out(x)
    launch_glu(x, out, None, _GELU_BY_APPROXIMATE[approximate], traced=True)
    return out


def _silu_and_mul_static_fp8_quant_op(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = FP8_DTYPE
) -> Tensor:
    out = _gated_out(x, fp8_dtype)
    launch_glu(x, out, scale, SILU, traced=True)
    return out


SILU_AND_MUL_OP = define_kernel_op(
    "ir_cuda::silu_and_mul", _silu_and_mul_op, fake=ops.silu_and_mul.native_fn
)
GELU_AND_MUL_OP = define_kernel_op(
    "ir_cuda::gelu_and_mul", _gelu_and_mul_op, fake=ops.gelu_and_mul.native_fn
)
SILU_AND_MUL_STATIC_FP8_QUANT_OP = define_kernel_op(
    "ir_cuda::silu_and_mul_static_fp8_quant",
    _silu_and_mul_static_fp8_quant_op,
    fake=ops.silu_and_mul_static_fp8_quant.native_fn,
)


# -- providers ------------------------------------------------------------------------------------


def silu_and_mul_cuda(x: Tensor) -> Tensor:
    if tracing():
        traced: Tensor = SILU_AND_MUL_OP(x)
        return traced
    out = _gated_out(x)
    launch_glu(x, out, None, SILU, traced=False)
    return out


def gelu_and_mul_cuda(x: Tensor, approximate: str = "none") -> Tensor:
    if tracing():
        traced: Tensor = GELU_AND_MUL_OP(x, approximate)
        return traced
    out = _gated_out(x)
    launch_glu(x, out, None, _GELU_BY_APPROXIMATE[approximate], traced=False)
    return out


def silu_and_mul_static_fp8_quant_cuda(
    x: Tensor, scale: Tensor, fp8_dtype: torch.dtype = FP8_DTYPE
) -> Tensor:
    if tracing():
        traced: Tensor = SILU_AND_MUL_STATIC_FP8_QUANT_OP(x, scale, fp8_dtype)
        return traced
    out = _gated_out(x, fp8_dtype)
    launch_glu(x, out, scale, SILU, traced=False)
    return out


ops.silu_and_mul.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=silu_and_mul_supports_args,
)(silu_and_mul_cuda)

ops.gelu_and_mul.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=gelu_and_mul_supports_args,
)(gelu_and_mul_cuda)

ops.silu_and_mul_static_fp8_quant.register_impl(
    PROVIDER,
    supported=supported,
    unsupported_reason=unsupported_reason,
    supports_args=silu_and_mul_static_fp8_quant_supports_args,
)(silu_and_mul_static_fp8_quant_cuda)
