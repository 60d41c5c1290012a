"""The shared conformance suite (``ir_op.testing.conformance``) for the ``rocm`` provider.

Full grid on an AMD GPU; a subset under the Triton interpreter when the platform is emulated;
skipped in sessions for other platforms. Quantization is tested in both fp8 formats: a GPU takes
its generation's format (:mod:`ir_kernels_rocm.fp8`), the emulated platform takes both.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import pytest
import torch

from ir_kernels_rocm.fp8 import fp8_formats
from ir_op.testing.conformance import INPUT_VARIANTS, Case, ProviderConformance
from ir_op.testing.fp8_scales import check_dynamic_scales_are_exact
from ir_op.testing.pytest_plugin import DeviceUnderTest, device_under_test

_FNUZ = {"fp8_dtype": torch.float8_e4m3fnuz}
_FNUZ_VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "static_scaled_fp8_quant": (_FNUZ,),
    "dynamic_scaled_fp8_quant": (_FNUZ, {**_FNUZ, "per_token": True, "scale_ub": 2.0}),
    "rms_norm_static_fp8_quant": (_FNUZ,),
    "fused_add_rms_norm_static_fp8_quant": (_FNUZ,),
    "silu_and_mul_static_fp8_quant": (_FNUZ,),
}


def _fp8_dtype(case: Case) -> torch.dtype | None:
    """The fp8 format ``case`` quantizes to, or ``None`` for an op that does not quantize."""
    options = dict(case.options)
    if "fp8_dtype" in options:
        fp8_dtype: torch.dtype = options["fp8_dtype"]
        return fp8_dtype
    parameter = inspect.signature(case.op.native_fn).parameters.get("fp8_dtype")
    return None if parameter is None else parameter.default


class TestRocmConformance(ProviderConformance):
    provider = "rocm"
    platform = "rocm"
    input_variants: ClassVar[dict[str, tuple[dict[str, Any], ...]]] = {
        name: INPUT_VARIANTS.get(name, ()) + _FNUZ_VARIANTS.get(name, ())
        for name in {*INPUT_VARIANTS, *_FNUZ_VARIANTS}
    }

    def expect_supported(self, case: Case) -> bool:
        if not super().expect_supported(case):
            return False
        fp8_dtype = _fp8_dtype(case)
        if fp8_dtype is None:
            return True
        probe = torch.empty(0, device=device_under_test().tensor_device)
        return fp8_dtype in fp8_formats(probe)


@pytest.mark.parametrize("fp8_dtype", [torch.float8_e4m3fnuz, torch.float8_e4m3fn])
def test_dynamic_scales_are_exact(fp8_dtype: torch.dtype, ir_device: DeviceUnderTest) -> None:
    """Scales are ``amax / fp8_max`` rounded once, as native's (not the 2-ulp tolerance)."""
    if ir_device.name != "rocm":
        pytest.skip(f"the rocm provider runs on the rocm platform, not {ir_device.name}")
    device = ir_device.tensor_device
    if fp8_dtype not in fp8_formats(torch.empty(0, device=device)):
        pytest.skip(f"this GPU's kernels do not write {fp8_dtype}")
    check_dynamic_scales_are_exact("rocm", fp8_dtype, device)


@pytest.mark.parametrize("fp8_dtype", [torch.float8_e4m3fnuz, torch.float8_e4m3fn])
def test_amax_programs_that_fold_several_tiles(
    fp8_dtype: torch.dtype, ir_device: DeviceUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one atomic allowed, each amax program folds several tiles (what large tensors
    do); scales and values stay native's, bit for bit."""
    from ir_triton.kernels import quant

    if ir_device.name != "rocm":
        pytest.skip(f"the rocm provider runs on the rocm platform, not {ir_device.name}")
    if fp8_dtype not in fp8_formats(torch.empty(0, device=ir_device.tensor_device)):
        pytest.skip(f"this GPU's kernels do not write {fp8_dtype}")
    monkeypatch.setattr(quant, "AMAX_MAX_ATOMICS", 1)
    check_dynamic_scales_are_exact("rocm", fp8_dtype, ir_device.tensor_device)
