"""Launch choices of the rocm kernels, for AMD Instinct (CDNA3 MI300, CDNA4 MI350) GPUs.

The table lives here rather than beside ``NVIDIA_ROW_TABLE`` in ``ir_triton.configs``: its
numbers belong to these kernel bodies and change with them, in this package's releases, and
nothing outside AMD's kernels reads them.

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
- **No waves_per_eu.** The hint tells the AMD compiler how many waves per SIMD to leave room
  for by capping its registers. Compiled for gfx942 and gfx950, every launch of these kernels
  uses 20 to 83 vector registers per lane without it (6 to 8 waves per SIMD, no spills), the
  hint at 1, 2 or 4 changes none of them, and at 8 it makes the widest spill; so it is not set.
  ``tests/test_kernels_compile.py`` keeps the counts in check.

These numbers are reasoned from the hardware's limits and checked by compiling for gfx942 and
gfx950; they have not been timed on an Instinct GPU yet (``benchmarks/tune_rows.py`` of
ir-kernels-cuda shows how; the same script with this table is the next step on MI300).
"""

from __future__ import annotations

from ir_triton import RowLaunch, RowTable

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

CDNA_ROW_LAUNCH = RowLaunch(CDNA_ROW_TABLE, stream=".cg")
"""How the shared row-wise kernels of ``ir_triton`` (RMS norms, gated activations, dynamic
quantization, fused norm and activation quantization) launch on CDNA: :data:`CDNA_ROW_TABLE`,
``num_warps`` only, and streaming (``nt``) loads for the last read of the activations, as this
package's static quantization kernel."""
