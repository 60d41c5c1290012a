# mypy: allow-untyped-decorators, disable-error-code="no-untyped-def"
# (Triton types a kernel's parameters from each launch's arguments, not from annotations.)
"""Triton kernels for RMS normalization, with and without a fused residual add.

Semantics are those of ``ir_op.ops.rms_norm`` / ``fused_add_rms_norm``: the (residual) sum and
the mean of squares are float32; the normalized row is rounded to the output dtype, then
multiplied by the weight and rounded again. The weight product is taken in float32 on the rounded
value, which gives the same result as a product in the weight's dtype (the weight has the
activation's dtype) and avoids the NaNs that Triton's interpreter produced for a bfloat16 x
bfloat16 product.

Two shapes of kernel, chosen by :data:`ROW_TABLE` (``ir_op.triton``, tuned for H100):

- ``rms_norm_rows_kernel``: a ``[ROWS, BLOCK]`` tile, each row read once into registers
  (rows up to 8192 wide; short rows are packed several per program);
- ``rms_norm_looped_kernel``: one program per row, looping over ``BLOCK``-wide chunks: a first
  pass accumulates the statistic, a second re-reads the inputs (mostly from L2), normalizes and
  writes. Nothing is written before the second pass, so outputs may alias the inputs. The chunk
  counts are constexprs (one compile per row width, which a model fixes): loops with a runtime
  bound fail in Triton 3.6's interpreter under NumPy 2.4.

Outputs may alias inputs in both (``fused_add_rms_norm``'s in-place provider): every element is
read before the same program writes it, and programs own disjoint rows.
"""

import triton
import triton.language as tl


@triton.jit(do_not_specialize=["n_rows"])
def rms_norm_rows_kernel(
    x_ptr,
    x_row_stride,
    residual_ptr,
    residual_row_stride,
    weight_ptr,
    out_ptr,
    out_row_stride,
    residual_out_ptr,
    residual_out_row_stride,
    n_rows,
    n_cols,
    variance_size,
    epsilon,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    PARTIAL_VARIANCE: tl.constexpr,
):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    col_mask = cols < n_cols
    mask = (rows < n_rows)[:, None] & col_mask[None, :]
    rows = rows.to(tl.int64)[:, None]  # row * stride can pass 2**31 elements
    cols_2d = cols[None, :]

    x = tl.load(x_ptr + rows * x_row_stride + cols_2d, mask=mask, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        residual = tl.load(
            residual_ptr + rows * residual_row_stride + cols_2d, mask=mask, other=0.0
        )
        x = x + residual.to(tl.float32)
        tl.store(
            residual_out_ptr + rows * residual_out_row_stride + cols_2d,
            x.to(residual_out_ptr.dtype.element_ty),
            mask=mask,
        )
    if PARTIAL_VARIANCE:
        sample = tl.where(cols_2d < variance_size, x, 0.0)
        mean_square = tl.sum(sample * sample, axis=1) / variance_size
    else:
        mean_square = tl.sum(x * x, axis=1) / n_cols
    rstd = tl.rsqrt(mean_square + epsilon)
    out = (x * rstd[:, None]).to(out_ptr.dtype.element_ty)
    if HAS_WEIGHT:
        weight = tl.load(weight_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
        out = (out.to(tl.float32) * weight[None, :]).to(out_ptr.dtype.element_ty)
    tl.store(out_ptr + rows * out_row_stride + cols_2d, out, mask=mask)


@triton.jit
def rms_norm_looped_kernel(
    x_ptr,
    x_row_stride,
    residual_ptr,
    residual_row_stride,
    weight_ptr,
    out_ptr,
    out_row_stride,
    residual_out_ptr,
    residual_out_row_stride,
    n_cols,
    variance_size,
    epsilon,
    BLOCK: tl.constexpr,
    CHUNKS: tl.constexpr,
    STAT_CHUNKS: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    PARTIAL_VARIANCE: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_row_stride
    out_row = out_ptr + row * out_row_stride
    stat_cols = variance_size if PARTIAL_VARIANCE else n_cols

    squares = tl.zeros([BLOCK], dtype=tl.float32)
    for chunk in range(STAT_CHUNKS):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < stat_cols
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_RESIDUAL:
            residual = tl.load(
                residual_ptr + row * residual_row_stride + cols, mask=mask, other=0.0
            )
            x = x + residual.to(tl.float32)
        squares += x * x
    rstd = tl.rsqrt(tl.sum(squares, axis=0) / stat_cols + epsilon)

    for chunk in range(CHUNKS):
        cols = chunk * BLOCK + tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_RESIDUAL:
            residual = tl.load(
                residual_ptr + row * residual_row_stride + cols, mask=mask, other=0.0
            )
            x = x + residual.to(tl.float32)
            tl.store(
                residual_out_ptr + row * residual_out_row_stride + cols,
                x.to(residual_out_ptr.dtype.element_ty),
                mask=mask,
            )
        out = (x * rstd).to(out_ptr.dtype.element_ty)
        if HAS_WEIGHT:
            weight = tl.load(weight_ptr + cols, mask=mask, other=0.0).to(tl.float32)
            out = (out.to(tl.float32) * weight).to(out_ptr.dtype.element_ty)
        tl.store(out_row + cols, out, mask=mask)
