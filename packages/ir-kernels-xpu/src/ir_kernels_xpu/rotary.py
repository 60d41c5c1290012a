"""The ``xpu`` provider of ``rotary_embedding`` (RoPE): the shared Triton kernel of
:mod:`ir_triton.kernels.rotary`, launched for Intel Xe GPUs, and its registration.

The semantics, the kernel and the arguments it takes are described there; the body is the same
as on NVIDIA because it is a gather of one cache row per token and a stream over query and key,
with no reduction and no fp8 conversion. What differs is the launch: 16-lane sub-groups (the
``warp_size``/``threads_per_warp`` option of :func:`ir_kernels_xpu.configs.launch_options`), each
lane holding 16 values of each half, as the row kernels do in the default register mode, so the
largest tile (2048 pairs) takes 8 sub-groups. Tiles never reach the size that asks for
``grf_mode="large"``.

Two providers share the kernel: the in-place one (``maybe_inplace``), which writes the rotated
elements back into ``query`` and ``key``, and the out-of-place one (the default overload), which
writes new contiguous tensors.
"""

from collections.abc import Mapping
from typing import Any

from ir_kernels_xpu._support import PROVIDER, supported, unsupported_reason
from ir_kernels_xpu.configs import SUB_GROUP_SIZE, launch_options
from ir_triton import RowConfig
from ir_triton.kernels.rotary import RotaryLaunch, RotaryProviders

ELEMENTS_PER_LANE = 16


def _xe_options(num_warps: int) -> Mapping[str, Any]:
    tile = num_warps * SUB_GROUP_SIZE * ELEMENTS_PER_LANE
    return launch_options(RowConfig(block=tile, rows=1, num_warps=num_warps, looped=False))


XE_ROTARY_LAUNCH = RotaryLaunch(
    lanes_per_warp=SUB_GROUP_SIZE,
    elements_per_lane=ELEMENTS_PER_LANE,
    max_warps=8,
    options=_xe_options,
)
"""16-lane sub-groups, 16 values per lane and half; 8 sub-groups for the largest tile."""

ROTARY = RotaryProviders("ir_xpu", XE_ROTARY_LAUNCH)
ROTARY_LAUNCHER = ROTARY.launcher
rotary_embedding_xpu = ROTARY.functional
rotary_embedding_xpu_inplace = ROTARY.inplace

ROTARY.register(PROVIDER, supported, unsupported_reason)
