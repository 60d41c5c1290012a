"""The cuda provider's registration: where it runs, which arguments it takes, how it traces."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch

from ir_kernels_cuda import PROVIDED_OPS
from ir_kernels_cuda._support import KERNEL_SET, PROVIDER
from ir_kernels_cuda.activation import ACTIVATION
from ir_kernels_cuda.norm import NORM
from ir_kernels_cuda.quant import STATIC_QUANT
from ir_op import IrOp, enable_torch_wrap, ops
from ir_op.testing import forced_platform, preserved_priorities
from ir_op.testing.pytest_plugin import DeviceUnderTest
from ir_triton.testing.registration import KernelSetRegistration
from ir_triton.testing.shared_rows import SharedRowKernelsChecks


class TestRegistration(KernelSetRegistration):
    kernel_set = KERNEL_SET


class TestSharedRowKernels(SharedRowKernelsChecks):
    """The shared bodies through the cuda launch (tiny tables: every looped and chunked path)."""

    platform = provider = PROVIDER
    norm, activation, static_quant = NORM, ACTIVATION, STATIC_QUANT
    fp8_dtypes = (torch.float8_e4m3fn,)


def test_first_in_the_priorities_on_cuda() -> None:
    with forced_platform("cuda") as platform:
        if platform.emulated and os.environ.get("TRITON_INTERPRET") != "1":
            pytest.skip("emulation needs TRITON_INTERPRET=1 (the cuda session sets it)")
        for name in PROVIDED_OPS:
            assert IrOp.registry[name].get_priority()[0] == PROVIDER, name


# -- supports_args ------------------------------------------------------------------------------


def _norm_cases(device: str) -> list[tuple[str, tuple[Any, ...], bool]]:
    def t(*shape: int, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
        return torch.randn(*shape, device=device).to(dtype)

    x, w = t(4, 64), t(64)
    padded = t(4, 80)[:, :64]
    cases: list[tuple[str, tuple[Any, ...], bool]] = [
        ("bf16", (x, w, 1e-6), True),
        ("no weight", (x, None, 1e-6), True),
        ("fp16", (t(4, 64, dtype=torch.float16), t(64, dtype=torch.float16), 1e-6), True),
        ("fp32", (t(4, 64, dtype=torch.float32), t(64, dtype=torch.float32), 1e-6), True),
        ("fp64", (t(4, 64, dtype=torch.float64), t(64, dtype=torch.float64), 1e-6), False),
        ("int", (torch.ones(4, 64, dtype=torch.int32, device=device), None, 1e-6), False),
        ("fp32 weight", (x, t(64, dtype=torch.float32), 1e-6), True),  # vLLM's rule
        ("fp16 weight", (x, t(64, dtype=torch.float16), 1e-6), True),
        ("fp64 weight", (x, t(64, dtype=torch.float64), 1e-6), False),
        ("0-dim x", (t(1).reshape(()), None, 1e-6), False),
        ("None x", (None, None, 1e-6), False),
        ("weight size", (x, t(63), 1e-6), False),
        ("weight strided", (x, t(128)[::2], 1e-6), False),
        ("weight 2-D", (x, t(1, 64), 1e-6), False),
        ("padded rows", (padded, w, 1e-6), True),
        ("3-D", (t(2, 3, 64), w, 1e-6), True),
        ("1-D", (t(64), w, 1e-6), True),
        ("transposed", (t(64, 4).t(), t(4), 1e-6), False),
        ("variance_size", (x, w, 1e-6, 16), True),
        ("variance_size = hidden", (x, w, 1e-6, 64), True),
        ("variance_size 0", (x, w, 1e-6, 0), False),
        ("variance_size too big", (x, w, 1e-6, 65), False),
        ("meta tensors", (x.to("meta"), w.to("meta"), 1e-6), False),
    ]
    return cases


def test_rms_norm_supports_args(ir_device: DeviceUnderTest) -> None:
    impl = ops.rms_norm.impls[PROVIDER]
    for name, args, expected in _norm_cases(ir_device.tensor_device):
        assert impl.supports_args(*args) is expected, name


def test_fused_add_rms_norm_supports_args(ir_device: DeviceUnderTest) -> None:
    impl = ops.fused_add_rms_norm.impls[PROVIDER]
    for name, (x, w, *rest), expected in _norm_cases(ir_device.tensor_device):
        residual = torch.empty_like(x) if isinstance(x, torch.Tensor) else None
        assert impl.supports_args(x, residual, w, *rest) is expected, name
    device = ir_device.tensor_device
    x = torch.randn(4, 64, device=device).to(torch.bfloat16)
    w = torch.randn(64, device=device).to(torch.bfloat16)
    assert impl.supports_args(x, torch.randn(80, 64, device=device)[:4].to(x.dtype), w, 1e-6)
    assert not impl.supports_args(x, x.float(), w, 1e-6), "residual dtype"
    assert not impl.supports_args(x, x[:3], w, 1e-6), "residual shape"
    assert not impl.supports_args(x, x.t().contiguous().t(), w, 1e-6), "residual layout"
    row = torch.randn(64, device=device).to(x.dtype)
    assert not impl.supports_args(row.expand(4, 64), x, w, 1e-6), "overlapping rows"


def test_gelu_and_mul_sparse_supports_args(ir_device: DeviceUnderTest) -> None:
    impl = ops.gelu_and_mul_sparse.impls[PROVIDER]
    device = ir_device.tensor_device
    x = torch.randn(4, 64, device=device).to(torch.bfloat16)
    assert impl.supports_args(x, 1.6, "tanh")
    assert impl.supports_args(x, 1.6)
    assert impl.supports_args(torch.randn(4, 80, device=device)[:, :64], 1.6, "none")
    assert not impl.supports_args(x[:, :63], 1.6), "odd width"
    assert not impl.supports_args(x, 1.6, "fast"), "unknown approximation"
    assert not impl.supports_args(x.double(), 1.6), "fp64"
    assert not impl.supports_args(x.t(), 1.6), "transposed"


# -- in place -----------------------------------------------------------------------------------


def test_one_buffer_for_x_and_residual_computes_out_of_place(ir_device: DeviceUnderTest) -> None:
    if ir_device.name != "cuda":
        pytest.skip("the kernels run on the cuda platform (real or emulated) only")
    x = torch.randn(5, 64, device=ir_device.tensor_device).to(torch.bfloat16)
    w = torch.randn(64, device=ir_device.tensor_device).to(torch.bfloat16)
    expected = ops.fused_add_rms_norm.native_fn(x, x, w, 1e-6)
    with preserved_priorities():
        ops.fused_add_rms_norm.set_default([PROVIDER, "native"])
        assert ops.fused_add_rms_norm.dispatch(x, x, w, 1e-6).provider == PROVIDER
        out, residual = ops.fused_add_rms_norm.maybe_inplace(x, x, w, 1e-6)
    assert out.data_ptr() != x.data_ptr()
    tolerance = ops.fused_add_rms_norm.get_tolerance(torch.bfloat16)
    torch.testing.assert_close((out, residual), expected, **tolerance)


# -- tracing and torch.compile ------------------------------------------------------------------


def test_providers_call_their_operators_while_tracing(ir_device: DeviceUnderTest) -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    from ir_kernels_cuda import activation, norm

    launchers = (
        norm.NORM.rows_launcher,
        norm.NORM.fused_rows_launcher,
        norm.NORM.looped_launcher,
        activation.ACTIVATION.sparse_rows_launcher,
    )
    launched = [launcher.slow_launches + launcher.cached_keys for launcher in launchers]
    with FakeTensorMode() as mode:
        x = mode.from_tensor(torch.randn(3, 64, device=ir_device.tensor_device))
        w = mode.from_tensor(torch.randn(64, device=ir_device.tensor_device))
        assert norm.rms_norm_cuda(x, w, 1e-6).shape == (3, 64)
        out, residual = norm.fused_add_rms_norm_cuda(x, x, w, 1e-6)
        assert out.shape == residual.shape == (3, 64)
        assert norm.fused_add_rms_norm_cuda_inplace(x, x.clone(), w, 1e-6)[0] is x
        assert activation.ACTIVATION.gelu_and_mul_sparse(x, 1.0).shape == (3, 32)
    assert launched == [launcher.slow_launches + launcher.cached_keys for launcher in launchers]


def _kernel_op_args(device: str) -> list[tuple[torch._ops.OpOverload, tuple[Any, ...]]]:
    from ir_kernels_cuda import activation, norm

    def t(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=device).to(torch.bfloat16)

    return [
        (norm.RMS_NORM_OP, (t(5, 64), t(64), 1e-6, None)),
        (norm.RMS_NORM_OP, (t(5, 80)[:, :64], None, 1e-6, 16)),
        (norm.FUSED_ADD_RMS_NORM_OP, (t(5, 64), t(5, 64), t(64), 1e-6, None)),
        (norm.FUSED_ADD_RMS_NORM_INPLACE_OP, (t(5, 64), t(5, 64), t(64), 1e-6, None)),
        (activation.ACTIVATION.gelu_and_mul_sparse_op, (t(5, 64), 1.2, "tanh")),
    ]


def test_kernel_operators_pass_opcheck(ir_device: DeviceUnderTest) -> None:
    if ir_device.name != "cuda":
        pytest.skip("the kernels run on the cuda platform (real or emulated) only")
    for op, args in _kernel_op_args(ir_device.tensor_device):
        torch.library.opcheck(op, args)


def test_kernel_operators_match_native(ir_device: DeviceUnderTest) -> None:
    if ir_device.name != "cuda":
        pytest.skip("the kernels run on the cuda platform (real or emulated) only")
    from ir_kernels_cuda import activation, norm

    tolerance = ops.rms_norm.get_tolerance(torch.bfloat16)
    for op, args in _kernel_op_args(ir_device.tensor_device):
        if op is norm.FUSED_ADD_RMS_NORM_INPLACE_OP:
            x, residual = args[0].clone(), args[1].clone()
            op(x, residual, *args[2:])
            result: Any = (x, residual)
            expected: Any = ops.fused_add_rms_norm.native_fn(*args)
        else:
            result = op(*args)
            native = {
                norm.RMS_NORM_OP: ops.rms_norm,
                norm.FUSED_ADD_RMS_NORM_OP: ops.fused_add_rms_norm,
                activation.ACTIVATION.gelu_and_mul_sparse_op: ops.gelu_and_mul_sparse,
            }[op]
            expected = native.native_fn(*args)
        torch.testing.assert_close(result, expected, **tolerance)


@pytest.mark.parametrize("wrap", [False, True])
def test_torch_compile_full_graph(ir_device: DeviceUnderTest, wrap: bool) -> None:
    """Compiled with the provider first, the ops trace to one graph and match eager."""
    if ir_device.name != "cuda":
        pytest.skip("the kernels run on the cuda platform (real or emulated) only")
    torch._dynamo.reset()
    device = ir_device.tensor_device
    x = torch.randn(6, 64, device=device).to(torch.bfloat16)
    r = torch.randn(6, 64, device=device).to(torch.bfloat16)
    w = torch.randn(64, device=device).to(torch.bfloat16)

    def block(x: torch.Tensor, r: torch.Tensor, w: torch.Tensor) -> Any:
        normed = ops.rms_norm(x, w, 1e-6)
        out, residual = ops.fused_add_rms_norm(normed, r, w, 1e-6)
        return ops.gelu_and_mul_sparse(out, 0.5), residual

    # Inductor needs a C++ compiler for CPU tensors; aot_eager still traces, functionalizes and
    # runs the graph, which is what this checks when emulated.
    backend = "aot_eager" if ir_device.emulated else "inductor"
    with preserved_priorities(), enable_torch_wrap(wrap):
        for op in (ops.rms_norm, ops.fused_add_rms_norm, ops.gelu_and_mul_sparse):
            op.set_default([PROVIDER, "native"])
        eager = block(x, r, w)
        compiled = torch.compile(block, fullgraph=True, backend=backend)(x, r, w)
    torch.testing.assert_close(compiled, eager, **ops.rms_norm.get_tolerance(torch.bfloat16))


class _Captured(Exception):
    """Stops a compile once the functional graph is captured (nothing is launched)."""


def test_operators_decompose_into_their_kernels_with_symbolic_shapes() -> None:
    """torch.compile (dynamic shapes) sees the Triton kernels inside the ir_cuda operators."""
    from torch._dynamo.backends.common import aot_autograd

    from ir_kernels_cuda import activation, norm
    from ir_triton import interpreting

    if interpreting():
        pytest.skip("under the interpreter the operators are opaque custom ops")
    graphs: list[torch.fx.GraphModule] = []

    def capture(gm: torch.fx.GraphModule, example_inputs: Any) -> Any:
        graphs.append(gm)
        raise _Captured

    def t(*shape: int) -> torch.Tensor:
        return torch.randn(*shape).to(torch.bfloat16)

    calls: list[tuple[Any, tuple[Any, ...]]] = [
        (lambda x, w: norm.RMS_NORM_OP(x, w, 1e-6, None), (t(5, 64), t(64))),
        (lambda x, w: norm.RMS_NORM_OP(x, w, 1e-6, 16), (t(5, 80)[:, :64], t(64))),
        (
            lambda x, r, w: norm.FUSED_ADD_RMS_NORM_OP(x, r, w, 1e-6, None),
            (t(5, 64), t(5, 64), t(64)),
        ),
        (
            lambda x, r, w: norm.FUSED_ADD_RMS_NORM_INPLACE_OP(x, r, w, 1e-6, None),
            (t(5, 64), t(5, 64), t(64)),
        ),
        (lambda x: activation.ACTIVATION.gelu_and_mul_sparse_op(x, 1.0, "tanh"), (t(5, 64),)),
        (lambda x, w: norm.RMS_NORM_OP(x, w, 1e-6, None), (t(3, 9000), t(9000))),  # looped
    ]
    for fn, args in calls:
        torch._dynamo.reset()
        graphs.clear()
        compiled = torch.compile(fn, backend=aot_autograd(fw_compiler=capture), dynamic=True)
        with pytest.raises(torch._dynamo.exc.BackendCompilerFailed, match="_Captured"):
            compiled(*args)
        targets = [str(node.target) for node in graphs[0].graph.nodes if node.op == "call_function"]
        assert "triton_kernel_wrapper_functional" in targets, targets
        assert not any("ir_cuda" in target for target in targets), targets
