# mypy: allow-untyped-decorators, disable-error-code="no-untyped-def"
# (Triton types a kernel's parameters from each launch's arguments, not from annotations.)
"""Triton kernels for gated activations.

``gelu_and_mul_sparse`` (Gemma3n's sparse GeGLU) follows ``ir_op.ops.gelu_and_mul_sparse``:
each row's gate mean and population standard deviation (float32, two passes as in the native
function) give the threshold ``mean + std * std_multiplier``; ``relu(gate - threshold)`` goes
through GELU (erf form, or the tanh approximation) and multiplies ``up``, all in float32, rounded
once to the output dtype. ``relu`` keeps NaN (``where(v < 0, 0, v)``), as ``torch.relu`` does.

As for the norms: ``*_rows_kernel`` holds ``[ROWS, BLOCK]`` tiles of gate and up in registers;
``*_looped_kernel`` takes one row per program in ``BLOCK``-wide chunks, in three passes (mean,
spread, output); the chunk count is a constexpr, as in :mod:`ir_kernels_cuda.kernels.norm`.
"""

import triton
import triton.language as tl


@triton.jit
def gelu(v, TANH: tl.constexpr):
    """GELU in float32: the tanh approximation or the exact erf form."""
    if TANH:
        # tanh(u) = 1 - 2 / (exp(2u) + 1): exact at +-inf, and u >= 0 here (v is a relu output)
        u = 0.7978845608028654 * (v + 0.044715 * v * v * v)
        return 0.5 * v * (2.0 - 2.0 / (tl.exp(2.0 * u) + 1.0))
    else:
        return 0.5 * v * (1.0 + tl.math.erf(v * 0.7071067811865476))


@triton.jit
def relu_keep_nan(v):
    return tl.where(v < 0.0, 0.0, v)


@triton.jit(do_not_specialize=["n_rows"])
def gelu_and_mul_sparse_rows_kernel(
    x_ptr,
    x_row_stride,
    out_ptr,
    out_row_stride,
    n_rows,
    d,
    std_multiplier,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    TANH: tl.constexpr,
):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    mask = (rows < n_rows)[:, None] & (cols < d)[None, :]
    rows = rows.to(tl.int64)[:, None]
    gate_ptrs = x_ptr + rows * x_row_stride + cols[None, :]

    gate = tl.load(gate_ptrs, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(gate_ptrs + d, mask=mask, other=0.0).to(tl.float32)
    mean = tl.sum(gate, axis=1) / d
    centered = tl.where(mask, gate - mean[:, None], 0.0)
    std = tl.sqrt_rn(tl.sum(centered * centered, axis=1) / d)
    threshold = mean + std * std_multiplier
    sparse_gate = relu_keep_nan(gate - threshold[:, None])
    out = gelu(sparse_gate, TANH) * up
    tl.store(
        out_ptr + rows * out_row_stride + cols[None, :],
        out.to(out_ptr.dtype.element_ty),
        mask=mask,
    )


@triton.jit
def gelu_and_mul_sparse_looped_kernel(
    x_ptr,
    x_row_stride,
    out_ptr,
    out_row_stride,
    d,
    std_multiplier,
    BLOCK: tl.constexpr,
    CHUNKS: tl.constexpr,
    TANH: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    gate_row = x_ptr + row * x_row_stride
    out_row = out_ptr + row * out_row_stride

    sums = tl.zeros([BLOCK], dtype=tl.float32)
    for chunk in range(CHUNKS):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        sums += tl.load(gate_row + cols, mask=cols < d, other=0.0).to(tl.float32)
    mean = tl.sum(sums, axis=0) / d

    squares = tl.zeros([BLOCK], dtype=tl.float32)
    for chunk in range(CHUNKS):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < d
        gate = tl.load(gate_row + cols, mask=mask, other=0.0).to(tl.float32)
        centered = tl.where(mask, gate - mean, 0.0)
        squares += centered * centered
    threshold = mean + tl.sqrt_rn(tl.sum(squares, axis=0) / d) * std_multiplier

    for chunk in range(CHUNKS):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < d
        gate = tl.load(gate_row + cols, mask=mask, other=0.0).to(tl.float32)
        up = tl.load(gate_row + d + cols, mask=mask, other=0.0).to(tl.float32)
        out = gelu(relu_keep_nan(gate - threshold), TANH) * up
        tl.store(out_row + cols, out.to(out_ptr.dtype.element_ty), mask=mask)
