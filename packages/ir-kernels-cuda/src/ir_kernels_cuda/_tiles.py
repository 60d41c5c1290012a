"""Tiles of the elementwise kernels (fp8 quantization, gated activations, the amax pass).

They take the row-wise kernels' table (:class:`ir_op.triton.RowTable`) for their tile: whole rows
of up to ``max_block`` columns per program, short rows packed several per program. A wider row
needs no loop, having no reduction: its ``loop_block``-wide chunks are laid side by side on the
grid's second axis, so every program covers one tile and the grid covers the problem.
"""

from __future__ import annotations

from ir_op.triton import RowTable


def elementwise_tiles(
    table: RowTable, n_rows: int, n_cols: int
) -> tuple[tuple[int, int], int, int, int]:
    """``(grid, block, rows, num_warps)`` covering ``n_rows >= 1`` rows of ``n_cols >= 1``
    columns with programs of ``[rows, block]`` (a plain tuple: this is on every launch's path)."""
    config = table.config(n_cols)
    if config.looped:
        chunks = (n_cols + config.block - 1) // config.block
        return (n_rows, chunks), config.block, 1, config.num_warps
    programs = (n_rows + config.rows - 1) // config.rows
    return (programs, 1), config.block, config.rows, config.num_warps
