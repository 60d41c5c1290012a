"""The shared conformance suite (``ir_op.testing.conformance``) for the ``xpu`` provider.

Full grid on an Intel GPU; a subset under the Triton interpreter when the platform is emulated;
skipped in sessions for other platforms.
"""

import pytest
import torch

from ir_op.testing.conformance import ProviderConformance
from ir_op.testing.fp8_scales import check_dynamic_scales_are_exact
from ir_op.testing.pytest_plugin import DeviceUnderTest


class TestXpuConformance(ProviderConformance):
    provider = "xpu"
    platform = "xpu"


def test_dynamic_scales_are_exact(ir_device: DeviceUnderTest) -> None:
    """Scales are ``amax / fp8_max`` rounded once, as native's (not the 2-ulp tolerance)."""
    if ir_device.name != "xpu":
        pytest.skip(f"the xpu provider runs on the xpu platform, not {ir_device.name}")
    check_dynamic_scales_are_exact("xpu", torch.float8_e4m3fn, ir_device.tensor_device)


def test_amax_programs_that_fold_several_tiles(
    ir_device: DeviceUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one atomic allowed, each amax program folds several tiles (what large tensors
    do); scales and values stay native's, bit for bit."""
    from ir_triton.kernels import quant

    if ir_device.name != "xpu":
        pytest.skip(f"the xpu provider runs on the xpu platform, not {ir_device.name}")
    monkeypatch.setattr(quant, "AMAX_MAX_ATOMICS", 1)
    check_dynamic_scales_are_exact("xpu", torch.float8_e4m3fn, ir_device.tensor_device)
