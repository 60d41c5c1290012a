"""Launch choices of the xpu kernels, for Intel Xe GPUs (Data Center GPU Max, Arc B-series).

The table lives here rather than beside ``NVIDIA_ROW_TABLE`` in ``ir_triton.configs``: its
numbers belong to these kernel bodies and change with them, in this package's releases, and the
launch options it adds (sub-group size, ``grf_mode``) exist only in Intel's Triton backend.

What differs from the NVIDIA table, and why:

- **Sub-groups of 16.** On Intel's backend Triton's ``num_warps`` counts sub-groups and the
  warp size is a launch option (16 or 32; the backend's default is 32). An Xe vector engine
  executes 16 float32 lanes per instruction, so a 16-wide sub-group is one hardware thread with
  the whole register file to itself (128 registers of 64 bytes: 128 float32 values per lane);
  a 32-wide one is issued as two halves and gets 64 values per lane.
- **Fewer sub-groups for wide rows, in the large register file.** A row's sum crosses
  sub-groups through shared local memory and a barrier, which costs more on Xe than a warp
  shuffle tree does on NVIDIA. Tiles of 4096 and 8192 elements therefore hold 32 values per lane
  (8 and 16 sub-groups instead of 16 and 32) and compile with ``grf_mode="large"`` (256
  registers per hardware thread), which leaves room for a norm's activation, residual and
  weight without spilling; smaller tiles hold 16 values per lane in the default mode, which
  keeps twice the hardware threads per vector engine. Rows wider than 8192 loop in
  4096-column chunks, like NVIDIA's.

These numbers are reasoned from the hardware's limits; they have not been timed on an Intel GPU
(none is available to CI or to the developers, and Triton's PyPI wheel has no Intel backend to
compile with here). They are the first thing to tune on one.
"""

from __future__ import annotations

import functools
from typing import Any

from ir_triton import RowConfig, RowLaunch, RowTable

SUB_GROUP_SIZE = 16
LARGE_GRF_TILE = 4096
"""Tiles of at least this many elements compile with ``grf_mode="large"``."""

XE_ROW_TABLE = RowTable(
    max_block=8192,
    loop_block=4096,
    loop_warps=8,
    min_tile=2048,
    max_rows=64,
    min_block=16,
    warps=((256, 1), (512, 2), (1024, 4), (2048, 8), (4096, 8), (8192, 16)),
)
"""Row-kernel choices for Intel Xe GPUs, in 16-lane sub-groups (see the module docstring)."""


@functools.cache
def _intel_option_names() -> frozenset[str] | None:
    """The launch options the installed Intel backend knows, or ``None`` without one (Triton's
    interpreter, or a Triton without Intel's backend, which ignore the options)."""
    try:
        from triton.backends.intel.compiler import XPUOptions
    except ImportError:
        return None
    return frozenset(XPUOptions.__dataclass_fields__)


def _warp_size_option(names: frozenset[str] | None) -> str:
    # Intel's backend called the option threads_per_warp before it took upstream's warp_size.
    if names is not None and "warp_size" in names and "threads_per_warp" not in names:
        return "warp_size"
    return "threads_per_warp"


@functools.cache
def launch_options(config: RowConfig) -> dict[str, Any]:
    """The Triton launch options of a row-wise kernel for ``config``.

    Options the installed Intel backend does not know are left out (Triton rejects unknown
    launch options): the launch then takes the backend's defaults for them.
    """
    names = _intel_option_names()
    options: dict[str, Any] = {
        "num_warps": config.num_warps,
        _warp_size_option(names): SUB_GROUP_SIZE,
    }
    if config.block * config.rows >= LARGE_GRF_TILE:
        options["grf_mode"] = "large"
    if names is not None:
        options = {k: v for k, v in options.items() if k == "num_warps" or k in names}
    return options


XE_ROW_LAUNCH = RowLaunch(XE_ROW_TABLE, options=launch_options)
"""How the shared row-wise kernels of ``ir_triton`` (RMS norms, gated activations, dynamic
quantization, fused norm and activation quantization) launch on Xe: :data:`XE_ROW_TABLE` with
:func:`launch_options` (16-lane sub-groups, the large register file for wide tiles) and no cache
hint, as this package's static quantization kernel."""
