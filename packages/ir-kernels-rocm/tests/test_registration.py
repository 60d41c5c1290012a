"""The rocm provider's registration: where it runs and why not, the fp8 formats it takes, its
looped kernels, and how it traces (operators for torch.compile)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest
import torch

from ir_kernels_rocm import fp8
from ir_kernels_rocm._support import KERNEL_SET, PROVIDER
from ir_kernels_rocm.activation import ACTIVATION
from ir_kernels_rocm.norm import NORM
from ir_kernels_rocm.quant import STATIC_QUANT
from ir_op import ops
from ir_op.platforms.rocm import AITER_PROVIDER
from ir_op.testing import forced_platform, random_rows
from ir_op.testing.pytest_plugin import DeviceUnderTest
from ir_triton.testing.registration import KernelSetRegistration
from ir_triton.testing.shared_rows import SharedRowKernelsChecks

ON_ROCM = "the kernels run on the rocm platform (real or emulated) only"


def _skip_unless_rocm(device: DeviceUnderTest) -> None:
    if device.name != "rocm":
        pytest.skip(ON_ROCM)


class TestRegistration(KernelSetRegistration):
    kernel_set = KERNEL_SET
    also_without_triton: ClassVar[Mapping[str, tuple[str, ...]]] = {
        AITER_PROVIDER: ("rms_norm", "fused_add_rms_norm")
    }


# -- supports_args --------------------------------------------------------------------------------


def test_fp8_formats_by_architecture() -> None:
    fnuz, fn = torch.float8_e4m3fnuz, torch.float8_e4m3fn
    assert fp8.fp8_formats_of_arch("gfx942:sramecc+:xnack-") == {fnuz}
    assert fp8.fp8_formats_of_arch("gfx940") == {fnuz}
    assert fp8.fp8_formats_of_arch("gfx950") == {fn}
    assert fp8.fp8_formats_of_arch("gfx1201") == {fn}
    assert fp8.fp8_formats_of_arch("gfx90a:sramecc+:xnack-") == frozenset()
    assert fp8.fp8_formats_of_arch("gfx1100") == frozenset()


def test_fp8_formats_read_the_device_of_the_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a real GPU, the architecture of the tensor's device decides, looked up once."""
    asked: list[int] = []

    def arch(index: int) -> str:
        asked.append(index)
        return {0: "gfx942:sramecc+:xnack-", 1: "gfx950"}[index]

    class Device:
        def __init__(self, index: int) -> None:
            self.index = index

        def get_device(self) -> int:
            return self.index

    monkeypatch.setattr(fp8, "_device_arch", arch)
    monkeypatch.setattr(fp8, "_by_device", {})
    with forced_platform("rocm") as platform:
        if not platform.emulated:
            pytest.skip("a real ROCm machine answers for its own GPUs")
        platform.emulated = False  # as on a real machine, without touching a GPU
        try:
            gpu0, gpu1 = Device(0), Device(1)
            assert fp8.fp8_formats(gpu0) == {torch.float8_e4m3fnuz}  # type: ignore[arg-type]
            assert fp8.fp8_formats(gpu1) == {torch.float8_e4m3fn}  # type: ignore[arg-type]
            assert fp8.fp8_formats(gpu0) == {torch.float8_e4m3fnuz}  # type: ignore[arg-type]
        finally:
            platform.emulated = True
    assert asked == [0, 1]


def test_quant_takes_the_formats_of_the_platform(ir_device: DeviceUnderTest) -> None:
    _skip_unless_rocm(ir_device)
    impl = ops.static_scaled_fp8_quant.impls[PROVIDER]
    x = random_rows([4], 64, torch.bfloat16, device=ir_device.tensor_device)
    scale = torch.tensor([0.5], device=ir_device.tensor_device)
    formats = fp8.fp8_formats(x)
    for fp8_dtype in (torch.float8_e4m3fn, torch.float8_e4m3fnuz):
        assert impl.supports_args(x, scale, fp8_dtype) is (fp8_dtype in formats)
    if ir_device.emulated:
        assert formats == {torch.float8_e4m3fn, torch.float8_e4m3fnuz}
    fmt = next(iter(formats)) if formats else torch.float8_e4m3fn
    assert not impl.supports_args(x, scale.double(), fmt), "scale dtype"
    assert not impl.supports_args(x, torch.ones(2, device=x.device), fmt), "scale size"
    assert not impl.supports_args(x, scale, torch.float16), "not fp8"
    assert not impl.supports_args(x.t(), scale, fmt), "transposed"


class TestSharedRowKernels(SharedRowKernelsChecks):
    platform = provider = PROVIDER
    norm = NORM
    activation = ACTIVATION
    static_quant = STATIC_QUANT
    fp8_dtypes = (torch.float8_e4m3fnuz, torch.float8_e4m3fn)
