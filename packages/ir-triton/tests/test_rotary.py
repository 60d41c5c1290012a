"""ir_triton.kernels.rotary: a kernel set's launch choices (RotaryLaunch). The kernel itself is
tested through every kernel set's conformance suite (rotary_embedding against native)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("triton")

from ir_triton.kernels.rotary import RotaryLaunch


@pytest.mark.parametrize(
    ("lanes", "per_lane", "max_warps", "tile", "warps"),
    [
        (32, 8, 8, 2048, 8),  # NVIDIA: 8 values per thread
        (32, 8, 8, 64, 1),  # tiny tiles still get a warp
        (64, 8, 4, 2048, 4),  # AMD wavefronts of 64
        (64, 8, 4, 1024, 2),
        (16, 16, 8, 2048, 8),  # Intel sub-groups of 16
        (16, 16, 8, 512, 2),
        (32, 8, 2, 2048, 2),  # capped
    ],
)
def test_warps_hold_the_asked_values_per_lane(
    lanes: int, per_lane: int, max_warps: int, tile: int, warps: int
) -> None:
    launch = RotaryLaunch(lanes_per_warp=lanes, elements_per_lane=per_lane, max_warps=max_warps)
    assert launch.num_warps(tile) == warps
    assert launch.launch_options(tile) == {"num_warps": warps}


def test_backend_options_come_from_the_kernel_set() -> None:
    def options(num_warps: int) -> dict[str, Any]:
        return {"num_warps": num_warps, "threads_per_warp": 16}

    launch = RotaryLaunch(lanes_per_warp=16, elements_per_lane=16, options=options)
    assert launch.launch_options(1024) == {"num_warps": 4, "threads_per_warp": 16}


@pytest.mark.parametrize(
    "field", ["lanes_per_warp", "elements_per_lane", "max_warps", "tile_pairs"]
)
@pytest.mark.parametrize("value", [0, 3, -4, 2.0])
def test_bad_launch_choices_are_rejected(field: str, value: object) -> None:
    kwargs: dict[str, Any] = {"lanes_per_warp": 32, field: value}
    with pytest.raises(ValueError, match=f"RotaryLaunch.{field} must be a power of two"):
        RotaryLaunch(**kwargs)
