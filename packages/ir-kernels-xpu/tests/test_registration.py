"""The xpu provider's registration: where it runs and why not, its launch options, the fp8
formats it takes; and the checks of the shared row-wise providers it is built on (looped
kernels, tracing, operators for torch.compile)."""

from __future__ import annotations

import torch

from ir_kernels_xpu import configs
from ir_kernels_xpu._support import KERNEL_SET, PROVIDER
from ir_kernels_xpu.activation import ACTIVATION
from ir_kernels_xpu.norm import NORM
from ir_kernels_xpu.quant import STATIC_QUANT
from ir_op import ops
from ir_op.testing import forced_platform, random_rows
from ir_op.testing.pytest_plugin import DeviceUnderTest
from ir_triton.testing.registration import KernelSetRegistration
from ir_triton.testing.shared_rows import SharedRowKernelsChecks


class TestRegistration(KernelSetRegistration):
    kernel_set = KERNEL_SET


# -- supports_args --------------------------------------------------------------------------------


def test_quant_takes_e4m3fn_only(ir_device: DeviceUnderTest) -> None:
    """Intel's backend converts to OCP e4m3fn; AMD's e4m3fnuz goes to native everywhere."""
    impl = ops.static_scaled_fp8_quant.impls[PROVIDER]
    with forced_platform("xpu"):
        device = "cpu" if ir_device.name != "xpu" else ir_device.tensor_device
        x = random_rows([4], 64, torch.bfloat16, device=device)
        scale = torch.tensor([0.5], device=device)
        assert impl.supports_args(x, scale, torch.float8_e4m3fn)
        assert impl.supports_args(x, scale)
        assert not impl.supports_args(x, scale, torch.float8_e4m3fnuz)
        assert not impl.supports_args(x, scale, torch.float16), "not fp8"
        assert not impl.supports_args(x, scale.double(), torch.float8_e4m3fn), "scale dtype"
        assert not impl.supports_args(x.t(), scale, torch.float8_e4m3fn), "transposed"


def test_launch_options_for_xe() -> None:
    """16-lane sub-groups everywhere; the large register file for tiles of 4096 or more."""
    names = configs._intel_option_names()
    for width, warps, large_grf in (
        (8, 4, False),
        (768, 8, False),
        (4096, 8, True),
        (8192, 16, True),
        (12289, 8, True),
    ):
        config = configs.XE_ROW_TABLE.config(width)
        options = configs.launch_options(config)
        assert options["num_warps"] == warps == config.num_warps, width
        if names is None:  # no Intel backend: the interpreter ignores the options
            assert options[configs._warp_size_option(None)] == configs.SUB_GROUP_SIZE
            assert ("grf_mode" in options) is large_grf, width
        else:
            assert set(options) <= names | {"num_warps"}
    assert configs.launch_options(config) is configs.launch_options(config), "computed once"


def test_xe_table_keeps_16_or_32_values_per_lane() -> None:
    for width in (8, 100, 512, 769, 2048, 4096, 8192):
        config = configs.XE_ROW_TABLE.config(width)
        per_lane = config.block * config.rows // (config.num_warps * configs.SUB_GROUP_SIZE)
        large = config.block * config.rows >= configs.LARGE_GRF_TILE
        assert per_lane == (32 if large else 16) or config.block * config.rows < 256, width


def test_warp_size_option_follows_the_backend() -> None:
    assert configs._warp_size_option(None) == "threads_per_warp"
    assert (
        configs._warp_size_option(frozenset({"threads_per_warp", "grf_mode"})) == "threads_per_warp"
    )
    assert configs._warp_size_option(frozenset({"warp_size", "grf_mode"})) == "warp_size"


class TestSharedRowKernels(SharedRowKernelsChecks):
    platform = provider = PROVIDER
    norm = NORM
    activation = ACTIVATION
    static_quant = STATIC_QUANT
    fp8_dtypes = (torch.float8_e4m3fn,)
