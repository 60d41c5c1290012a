"""Launch choices of the rocm kernels, for AMD Instinct (CDNA3 MI300, CDNA4 MI350) GPUs.

The table lives here rather than beside ``NVIDIA_ROW_TABLE`` in ``ir_op.triton.configs``: its
numbers belong to these kernel bodies and change with them, in this package's releases, and the
AMD launch option it adds (``waves_per_eu``) means nothing to another backend.

What differs from the NVIDIA table, and why:

- **64-wide wavefronts.** Triton's ``num_warps`` counts wavefronts of 64 lanes on AMD, so the
  same tile needs half the "warps" it needs on NVIDIA's 32-lane warps. The warp column keeps
  8 to 16 elements per lane (one or two 16-byte vectors of a 16-bit row), as there.
- **Wider single blocks.** A CDNA3/CDNA4 SIMD has 512 vector registers per lane (NVIDIA: 255
  per thread), so rows up to 16384 wide stay in registers in one block at 16 wavefronts (16
  float32 values per lane per tensor), and are read from memory once; NVIDIA loops from 8192.
  Wider rows loop in 8192-column chunks at 8 wavefronts.
- **Bigger packed tiles.** Short rows are packed until a program covers 4096 elements (four
  wavefronts at 16 elements per lane): a workgroup launch costs more on AMD, and 304 CUs
  (MI300X) still get thousands of programs at large token counts.
- **waves_per_eu.** The hint tells the AMD compiler how many waves per SIMD it must leave room
  for. These kernels need few registers (:mod:`tests.test_kernels_compile` checks the counts
  for gfx942 and gfx950): the compiler already fits the 8-wave maximum for every tile but the
  widest, so the hint is only given for 16-wavefront tiles, where it keeps the compiler from
  spending registers on unrolled loads that would halve occupancy.

These numbers are reasoned from the hardware's limits and checked by compiling for gfx942 and
gfx950; they have not been timed on an Instinct GPU yet (``benchmarks/tune_rows.py`` of
ir-kernels-cuda shows how; the same script with this table is the next step on MI300).
"""

from __future__ import annotations

from typing import Any

from ir_op.triton import RowConfig, RowTable

WAVEFRONT = 64
"""Lanes per wavefront on CDNA (``num_warps`` counts wavefronts)."""

CDNA_ROW_TABLE = RowTable(
    max_block=16384,
    loop_block=8192,
    loop_warps=8,
    min_tile=4096,
    max_rows=64,
    min_block=16,
    warps=((512, 1), (2048, 2), (4096, 4), (8192, 8), (16384, 16)),
)
"""Row-kernel choices for AMD Instinct CDNA3/CDNA4 GPUs (see the module docstring)."""

WIDE_TILE_WAVES_PER_EU = 2
"""``waves_per_eu`` for 16-wavefront tiles: two waves per SIMD, so the compiler keeps a
workgroup's registers within 256 per lane."""


def launch_options(config: RowConfig) -> dict[str, Any]:
    """The Triton launch options of a row-wise kernel for ``config``."""
    if config.num_warps >= 16:
        return {"num_warps": config.num_warps, "waves_per_eu": WIDE_TILE_WAVES_PER_EU}
    return {"num_warps": config.num_warps}
