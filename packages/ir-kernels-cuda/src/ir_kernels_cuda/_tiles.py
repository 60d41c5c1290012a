"""Tiles of the elementwise kernels (fp8 quantization, gated activations, the amax pass).

Without a reduction over the row, a program need not hold a whole row: rows are cut into
``block``-wide chunks laid side by side on the grid's second axis, and short rows are packed
several per program. The block is the largest power of two that divides the row width, between
:data:`MIN_BLOCK` and :data:`MAX_BLOCK` (no masked lanes: 5120 = 5 x 1024, 768 = 3 x 256), or,
for widths without one (odd widths), the power of two that covers the row, up to
:data:`MAX_BLOCK`. Rows per program and warps come from the row-wise kernels' table
(:class:`ir_triton.RowTable`): a program covers about ``min_tile`` elements, with the warps
the table gives that many.
"""

from __future__ import annotations

from ir_triton import RowTable

MIN_BLOCK = 256
MAX_BLOCK = 2048


def _power_of_two_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def elementwise_block(n_cols: int) -> int:
    """The chunk width for rows of ``n_cols >= 1`` columns (a power of two)."""
    divisor = n_cols & -n_cols  # the largest power of two dividing n_cols
    if divisor >= MIN_BLOCK:
        return min(MAX_BLOCK, divisor)
    return min(MAX_BLOCK, _power_of_two_at_least(n_cols))


def elementwise_tile(table: RowTable, n_cols: int) -> tuple[int, int, int, int]:
    """``(block, rows, chunks, num_warps)`` for rows of ``n_cols >= 1`` columns: programs of
    ``[rows, block]``, ``chunks`` of them across a row (the grid's second axis). It depends on
    the width only, so a provider computes it once per width; the grid's first axis is
    ``ceil(n_rows / rows)``."""
    block = elementwise_block(n_cols)
    rows = max(1, min(table.max_rows, table.min_tile // block))
    chunks = (n_cols + block - 1) // block
    return block, rows, chunks, table.warps_for(block * rows)
