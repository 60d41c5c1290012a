"""The ``rocm`` providers of the gated activations: ``silu_and_mul``, ``gelu_and_mul`` and
``gelu_and_mul_sparse`` (Gemma3n's sparse GeGLU), as Triton kernels for AMD Instinct GPUs.

Each input row is ``[gate | up]``, both ``D`` wide; the output is a new contiguous ``[..., D]``.
All math is float32 and rounded once to the output dtype, as in the native functions:

- SiLU is ``g / (1 + exp(-g))``;
- exact GELU is ``0.5 * g * (1 + erf(g / sqrt(2)))``;
- tanh GELU is computed as ``g * sigmoid(2 * u)`` with ``u = sqrt(2 / pi) * (g + 0.044715 g^3)``,
  which equals ``0.5 * g * (1 + tanh(u))`` without its cancellation for negative ``g``;
- the sparse GeGLU first subtracts each row's threshold ``mean + std * std_multiplier`` (mean and
  population standard deviation of the gate, two passes in float32) and applies ``relu``
  keeping NaN, as ``torch.relu`` does.

``silu_and_mul`` and ``gelu_and_mul`` are element-wise: one kernel over a 2-D grid of
``[ROWS, BLOCK]`` tiles (rows packed for short widths, column chunks for wide ones), with the
activation a constexpr. ``gelu_and_mul_sparse`` needs whole-row statistics: a one-block rows
kernel up to 16384 wide and a three-pass looped kernel beyond.

AMD-specific choices: read-once activations stream (``cache_modifier=".cg"``, an ``nt`` load on
CDNA3/CDNA4), tiles and wavefronts come from :data:`~ir_kernels_rocm.configs.CDNA_ROW_TABLE`.
The arithmetic is the op's, the same on every vendor; the looped kernel's first two passes read
with default caching so that the third finds the row in L2.
"""

import triton
import triton.language as tl
from torch import Tensor

from ir_kernels_rocm._support import PROVIDER, supported, unsupported_reason
from ir_kernels_rocm.configs import CDNA_ROW_TABLE
from ir_op import ops
from ir_op.triton import KernelLauncher, RowTable, define_kernel_op, tracing
from ir_op.triton.rows import row_stride
from ir_op.triton.supports import (
    gelu_and_mul_sparse_supports_args,
    gelu_and_mul_supports_args,
    silu_and_mul_supports_args,
)

SILU = 0
GELU_ERF = 1
GELU_TANH = 2
_GELU = {"none": GELU_ERF, "tanh": GELU_TANH}

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
):
    """``activate(gate) * up`` for this program's ``[ROWS, BLOCK]`` tile of the output."""
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = (rows < n_rows)[:, None] & (cols < D)[None, :]
    rows = rows.to(tl.int64)[:, None]
    gate_ptrs = x_ptr + rows * x_row_stride + cols[None, :]
    gate = tl.load(gate_ptrs, mask=mask, other=0.0, cache_modifier=".cg").to(tl.float32)
    up = tl.load(gate_ptrs + D, mask=mask, other=0.0, cache_modifier=".cg").to(tl.float32)
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
):
    """Sparse GeGLU of this program's ``[ROWS, BLOCK]`` tile of whole rows."""
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    mask = (rows < n_rows)[:, None] & (cols < D)[None, :]
    rows = rows.to(tl.int64)[:, None]
    gate_ptrs = x_ptr + rows * x_row_stride + cols[None, :]
    gate = tl.load(gate_ptrs, mask=mask, other=0.0, cache_modifier=".cg").to(tl.float32)
    up = tl.load(gate_ptrs + D, mask=mask, other=0.0, cache_modifier=".cg").to(tl.float32)
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
):
    """One row per program in ``BLOCK``-wide chunks: mean, spread, then the output."""
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
        gate = tl.load(gate_row + cols, mask=mask, other=0.0, cache_modifier=".cg")
        up = tl.load(gate_row + D + cols, mask=mask, other=0.0, cache_modifier=".cg")
        sparse_gate = relu_keep_nan(gate.to(tl.float32) - threshold)
        out = activate(sparse_gate, ACTIVATION) * up.to(tl.float32)
        tl.store(out_row + cols, out.to(out_ptr.dtype.element_ty), mask=mask)


# -- launching ------------------------------------------------------------------------------------

ROW_TABLE: RowTable = CDNA_ROW_TABLE
"""Block and wavefront choices (a module global, so tests and benchmarks can try another)."""

GATED_LAUNCHER = KernelLauncher(gated_activation_kernel)
SPARSE_ROWS_LAUNCHER = KernelLauncher(gelu_and_mul_sparse_rows_kernel)
SPARSE_LOOPED_LAUNCHER = KernelLauncher(gelu_and_mul_sparse_looped_kernel)


def _output_width(out: Tensor, traced: bool) -> int:
    d = out.shape[-1]
    return int(d) if traced else d  # a constexpr: a symbolic width is specialized when traced


def launch_gated_activation(x: Tensor, out: Tensor, activation: int, traced: bool) -> None:
    """Write ``activate(x[..., :d]) * x[..., d:]`` into ``out`` (a new contiguous ``[..., d]``)."""
    d = _output_width(out, traced)
    n_rows = out.numel() // d if d else 0
    if n_rows == 0:
        return
    config = ROW_TABLE.config(d)
    launcher = GATED_LAUNCHER
    (launcher.traced if traced else launcher.launch)(
        (config.grid(n_rows)[0], (d + config.block - 1) // config.block),
        x,
        row_stride(x),
        out,
        n_rows,
        d,
        config.block,
        config.rows,
        activation,
        num_warps=config.num_warps,
    )


def launch_gelu_and_mul_sparse(
    x: Tensor, out: Tensor, std_multiplier: float, approximate: str, traced: bool
) -> None:
    """Write ``gelu_and_mul_sparse(x)`` into ``out`` (a new contiguous ``[..., d]``)."""
    d = _output_width(out, traced)
    n_rows = out.numel() // d if d else 0
    if n_rows == 0:
        return
    config = ROW_TABLE.config(d)
    activation = _GELU[approximate]
    if config.looped:
        launcher = SPARSE_LOOPED_LAUNCHER
        (launcher.traced if traced else launcher.launch)(
            (n_rows,),
            x,
            row_stride(x),
            out,
            std_multiplier,
            d,
            config.block,
            activation,
            num_warps=config.num_warps,
        )
        return
    launcher = SPARSE_ROWS_LAUNCHER
    (launcher.traced if traced else launcher.launch)(
        config.grid(n_rows),
        x,
        row_stride(x),
        out,
        n_rows,
        std_multiplier,
        d,
        config.block,
        config.rows,
        activation,
        num_warps=config.num_warps,
    )


def _new_output(x: Tensor) -> Tensor:
    return x.new_empty((*x.shape[:-1], x.shape[-1] // 2))


# -- operators for torch.compile ----------------------------------------------------------------


def _silu_and_mul_op(x: Tensor) -> Tensor:
    out = _new_output(x)
    launch_gated_activation(x, out, SILU, traced=True)
    return out


def _gelu_and_mul_op(x: Tensor, approximate: str = "none") -> Tensor:
    out = _new_output(x)
    launch_gated_activation(x, out, _GELU[approximate], traced=True)
    return out


def _gelu_and_mul_sparse_op(x: Tensor, std_multiplier: float, approximate: str = "none") -> Tensor:
    out = _new_output(x)
    launch_gelu_and_mul_sparse(x, out, std_multiplier, approximate, traced=True)
    return out


SILU_AND_MUL_OP = define_kernel_op(
    "ir_rocm::silu_and_mul", _silu_and_mul_op, fake=ops.silu_and_mul.native_fn
)
GELU_AND_MUL_OP = define_kernel_op(
    "ir_rocm::gelu_and_mul", _gelu_and_mul_op, fake=ops.gelu_and_mul.native_fn
)
GELU_AND_MUL_SPARSE_OP = define_kernel_op(
    "ir_rocm::gelu_and_mul_sparse",
    _gelu_and_mul_sparse_op,
    fake=ops.gelu_and_mul_sparse.native_fn,
)


# -- providers ------------------------------------------------------------------------------------


def silu_and_mul_rocm(x: Tensor) -> Tensor:
    if tracing():
        traced: Tensor = SILU_AND_MUL_OP(x)
        return traced
    out = _new_output(x)
    launch_gated_activation(x, out, SILU, traced=False)
    return out


def gelu_and_mul_rocm(x: Tensor, approximate: str = "none") -> Tensor:
    if tracing():
        traced: Tensor = GELU_AND_MUL_OP(x, approximate)
        return traced
    out = _new_output(x)
    launch_gated_activation(x, out, _GELU[approximate], traced=False)
    return out


def gelu_and_mul_sparse_rocm(x: Tensor, std_multiplier: float, approximate: str = "none") -> Tensor:
    if tracing():
        traced: Tensor = GELU_AND_MUL_SPARSE_OP(x, std_multiplier, approximate)
        return traced
    out = _new_output(x)
    launch_gelu_and_mul_sparse(x, out, std_multiplier, approximate, traced=False)
    return out


for _op, _provider, _supports_args in (
    (ops.silu_and_mul, silu_and_mul_rocm, silu_and_mul_supports_args),
    (ops.gelu_and_mul, gelu_and_mul_rocm, gelu_and_mul_supports_args),
    (ops.gelu_and_mul_sparse, gelu_and_mul_sparse_rocm, gelu_and_mul_sparse_supports_args),
):
    _op.register_impl(
        PROVIDER,
        supported=supported,
        unsupported_reason=unsupported_reason,
        supports_args=_supports_args,
    )(_provider)
