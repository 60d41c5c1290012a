"""The xpu provider's registration: where it runs and why not, its launch options, the fp8
formats it takes, its looped kernels, and how it traces (operators for torch.compile)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import torch

from ir_kernels_xpu import activation, configs, norm, quant
from ir_kernels_xpu._support import KERNEL_SET, PROVIDER
from ir_op import IrOp, enable_torch_wrap, ops
from ir_op.testing import assert_outputs_close, forced_platform, preserved_priorities, random_rows
from ir_op.testing.kernel_set import KernelSetRegistration
from ir_op.testing.pytest_plugin import DeviceUnderTest
from ir_op.triton import RowTable
from ir_op.triton import supports as shared

ON_XPU = "the kernels run on the xpu platform (real or emulated) only"


def _skip_unless_xpu(device: DeviceUnderTest) -> None:
    if device.name != "xpu":
        pytest.skip(ON_XPU)


class TestRegistration(KernelSetRegistration):
    kernel_set = KERNEL_SET


# -- supports_args --------------------------------------------------------------------------------


def test_providers_take_the_shared_argument_checks() -> None:
    """The kernels take what every row-wise Triton kernel set takes (tested in ir-op)."""
    expected = {
        "rms_norm": shared.rms_norm_supports_args,
        "fused_add_rms_norm": shared.fused_add_rms_norm_supports_args,
        "silu_and_mul": shared.silu_and_mul_supports_args,
        "gelu_and_mul": shared.gelu_and_mul_supports_args,
        "gelu_and_mul_sparse": shared.gelu_and_mul_sparse_supports_args,
    }
    for name, predicate in expected.items():
        assert IrOp.registry[name].impls[PROVIDER]._supports_args is predicate, name


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


# -- kernels ------------------------------------------------------------------------------------

TINY_TABLE = RowTable(
    max_block=64,
    loop_block=32,
    loop_warps=1,
    min_tile=64,
    max_rows=4,
    min_block=16,
    warps=((64, 1),),
)
"""Loops for rows wider than 64, so the looped kernels run on small (fast) interpreted rows."""


def _calls(device: str, width: int) -> list[tuple[IrOp, Callable[..., Any], tuple[Any, ...]]]:
    def t(*shape: int, strided: bool = False) -> torch.Tensor:
        return random_rows(shape[:-1], shape[-1], torch.bfloat16, strided=strided, device=device)

    scale = torch.tensor([0.02], device=device)
    return [
        (ops.rms_norm, norm.rms_norm_xpu, (t(5, width), t(width), 1e-6)),
        (ops.rms_norm, norm.rms_norm_xpu, (t(5, width, strided=True), None, 1e-6, width // 3)),
        (
            ops.fused_add_rms_norm,
            norm.fused_add_rms_norm_xpu,
            (t(3, width), t(3, width), None, 1e-5),
        ),
        (
            ops.fused_add_rms_norm,
            norm.fused_add_rms_norm_xpu_inplace,
            (t(3, width, strided=True), t(3, width), t(width), 1e-5),
        ),
        (ops.silu_and_mul, activation.silu_and_mul_xpu, (t(4, 2 * width),)),
        (ops.gelu_and_mul, activation.gelu_and_mul_xpu, (t(4, 2 * width), "tanh")),
        (ops.gelu_and_mul, activation.gelu_and_mul_xpu, (t(4, 2 * width, strided=True), "none")),
        (ops.gelu_and_mul_sparse, activation.gelu_and_mul_sparse_xpu, (t(4, 2 * width), 0.5)),
        (
            ops.gelu_and_mul_sparse,
            activation.gelu_and_mul_sparse_xpu,
            (t(4, 2 * width, strided=True), -1.0, "tanh"),
        ),
        (
            ops.static_scaled_fp8_quant,
            quant.static_scaled_fp8_quant_xpu,
            (t(4, width, strided=True), scale, torch.float8_e4m3fn),
        ),
    ]


@pytest.mark.parametrize("width", [63, 64, 65, 97])
def test_looped_and_column_chunked_kernels_match_native(
    ir_device: DeviceUnderTest, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """With a tiny table every kernel takes its looped or column-chunked path on small rows."""
    _skip_unless_xpu(ir_device)
    for shared_providers in (norm.NORM, activation.ACTIVATION, quant.STATIC_QUANT):
        tiny_launch = dataclasses.replace(shared_providers.launch, table=TINY_TABLE)
        monkeypatch.setattr(shared_providers, "launch", tiny_launch)
    monkeypatch.setattr(quant.STATIC_QUANT, "plans", {})  # plans made with the real table
    for op, provider, args in _calls(ir_device.tensor_device, width):
        expected = op.native_fn(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
        assert_outputs_close(op, provider(*args), expected)


def test_one_buffer_for_x_and_residual_computes_out_of_place(ir_device: DeviceUnderTest) -> None:
    _skip_unless_xpu(ir_device)
    x = random_rows([5], 64, torch.bfloat16, device=ir_device.tensor_device)
    w = random_rows([], 64, torch.bfloat16, device=ir_device.tensor_device)
    expected = ops.fused_add_rms_norm.native_fn(x, x, w, 1e-6)
    with preserved_priorities():
        ops.fused_add_rms_norm.set_default([PROVIDER, "native"])
        assert ops.fused_add_rms_norm.dispatch(x, x, w, 1e-6).provider == PROVIDER
        out, residual = ops.fused_add_rms_norm.maybe_inplace(x, x, w, 1e-6)
    assert out.data_ptr() != x.data_ptr()
    assert_outputs_close(ops.fused_add_rms_norm, (out, residual), expected)


# -- tracing and torch.compile ------------------------------------------------------------------

LAUNCHERS = (
    norm.NORM.rows_launcher,
    norm.NORM.fused_rows_launcher,
    norm.NORM.looped_launcher,
    activation.ACTIVATION.gated_launcher,
    activation.ACTIVATION.sparse_rows_launcher,
    quant.QUANT_LAUNCHER,
)


def test_providers_call_their_operators_while_tracing(ir_device: DeviceUnderTest) -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    launched = [launcher.slow_launches + launcher.cached_keys for launcher in LAUNCHERS]
    with FakeTensorMode() as mode:
        x = mode.from_tensor(torch.randn(3, 64, device=ir_device.tensor_device))
        w = mode.from_tensor(torch.randn(64, device=ir_device.tensor_device))
        scale = mode.from_tensor(torch.ones(1, device=ir_device.tensor_device))
        assert norm.rms_norm_xpu(x, w, 1e-6).shape == (3, 64)
        out, residual = norm.fused_add_rms_norm_xpu(x, x, w, 1e-6)
        assert out.shape == residual.shape == (3, 64)
        assert norm.fused_add_rms_norm_xpu_inplace(x, x.clone(), w, 1e-6)[0] is x
        assert activation.silu_and_mul_xpu(x).shape == (3, 32)
        assert activation.gelu_and_mul_xpu(x, "tanh").shape == (3, 32)
        assert activation.gelu_and_mul_sparse_xpu(x, 1.0).shape == (3, 32)
        q = quant.static_scaled_fp8_quant_xpu(x, scale, torch.float8_e4m3fn)
        assert (q.shape, q.dtype) == ((3, 64), torch.float8_e4m3fn)
    assert launched == [launcher.slow_launches + launcher.cached_keys for launcher in LAUNCHERS]


def _kernel_op_cases(device: str) -> list[tuple[torch._ops.OpOverload, IrOp, tuple[Any, ...]]]:
    def t(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=device).to(torch.bfloat16)

    scale = torch.tensor([0.05], device=device)
    return [
        (norm.RMS_NORM_OP, ops.rms_norm, (t(5, 64), t(64), 1e-6, None)),
        (norm.RMS_NORM_OP, ops.rms_norm, (t(5, 80)[:, :64], None, 1e-6, 16)),
        (
            norm.FUSED_ADD_RMS_NORM_OP,
            ops.fused_add_rms_norm,
            (t(5, 64), t(5, 64), t(64), 1e-6, None),
        ),
        (activation.SILU_AND_MUL_OP, ops.silu_and_mul, (t(5, 64),)),
        (activation.GELU_AND_MUL_OP, ops.gelu_and_mul, (t(5, 64), "tanh")),
        (activation.GELU_AND_MUL_SPARSE_OP, ops.gelu_and_mul_sparse, (t(5, 64), 1.2, "tanh")),
        (
            quant.STATIC_FP8_QUANT_OP,
            ops.static_scaled_fp8_quant,
            (t(5, 64), scale, torch.float8_e4m3fn),
        ),
    ]


def test_kernel_operators_pass_opcheck_and_match_native(ir_device: DeviceUnderTest) -> None:
    _skip_unless_xpu(ir_device)
    for operator, op, args in _kernel_op_cases(ir_device.tensor_device):
        torch.library.opcheck(operator, args)
        assert_outputs_close(op, operator(*args), op.native_fn(*args))
    x, residual = (torch.randn(5, 64, device=ir_device.tensor_device) for _ in range(2))
    expected = ops.fused_add_rms_norm.native_fn(x, residual, None, 1e-6)
    norm.FUSED_ADD_RMS_NORM_INPLACE_OP(x, residual, None, 1e-6, None)
    assert_outputs_close(ops.fused_add_rms_norm, (x, residual), expected)


@pytest.mark.parametrize("wrap", [False, True])
def test_torch_compile_full_graph(ir_device: DeviceUnderTest, wrap: bool) -> None:
    """Compiled with the provider first, the ops trace to one graph and match eager."""
    _skip_unless_xpu(ir_device)
    torch._dynamo.reset()
    device = ir_device.tensor_device
    x = torch.randn(6, 64, device=device).to(torch.bfloat16)
    r = torch.randn(6, 64, device=device).to(torch.bfloat16)
    w = torch.randn(64, device=device).to(torch.bfloat16)
    scale = torch.tensor([0.05], device=device)

    def block(x: torch.Tensor, r: torch.Tensor, w: torch.Tensor) -> Any:
        normed = ops.rms_norm(x, w, 1e-6)
        out, residual = ops.fused_add_rms_norm(normed, r, w, 1e-6)
        act = ops.silu_and_mul(out) + ops.gelu_and_mul(out, "tanh")
        return ops.static_scaled_fp8_quant(act, scale, torch.float8_e4m3fn), residual

    # Inductor needs a C++ compiler for CPU tensors; aot_eager still traces, functionalizes and
    # runs the graph, which is what this checks when emulated.
    backend = "aot_eager" if ir_device.emulated else "inductor"
    used = (ops.rms_norm, ops.fused_add_rms_norm, ops.silu_and_mul, ops.gelu_and_mul)
    with preserved_priorities(), enable_torch_wrap(wrap):
        for op in (*used, ops.static_scaled_fp8_quant):
            op.set_default([PROVIDER, "native"])
        eager = block(x, r, w)
        compiled = torch.compile(block, fullgraph=True, backend=backend)(x, r, w)
    assert_outputs_close(ops.static_scaled_fp8_quant, compiled[0], eager[0])
    assert_outputs_close(ops.fused_add_rms_norm, compiled[1], eager[1])
