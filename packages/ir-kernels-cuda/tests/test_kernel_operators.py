"""The ``ir_cuda`` operators of the gated-activation, fp8 and rotary kernels: opcheck, the native
results, the providers calling them (and launching nothing) while tracing, and torch.compile of a
block that uses them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from ir_kernels_cuda import composite, quant, rotary
from ir_kernels_cuda._support import PROVIDER
from ir_kernels_cuda.activation import ACTIVATION
from ir_op import IrOp, enable_torch_wrap, ops
from ir_op.ops.rotary import rope_cos_sin_cache
from ir_op.testing import assert_outputs_close
from ir_op.testing.pytest_plugin import DeviceUnderTest


@dataclass(frozen=True)
class Operator:
    """One ``ir_cuda`` operator, the provider that calls it and the op whose native it matches."""

    name: str
    operator: Callable[..., Any]
    provider: Callable[..., Any]
    op: IrOp
    args: Callable[[str], tuple[Any, ...]]
    in_place: bool = False

    def native(self, args: tuple[Any, ...]) -> Any:
        return self.op.native_fn(*args)


def _t(*shape: int, device: str, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    return torch.randn(*shape, device=device).to(dtype)


def _scale(device: str) -> torch.Tensor:
    return torch.tensor([0.01], device=device)


def _rotary_args(device: str) -> tuple[Any, ...]:
    cache = rope_cos_sin_cache(8, 32, dtype=torch.bfloat16, device=device)
    return (torch.arange(5, device=device), _t(5, 128, device=device), _t(5, 64, device=device),
            64, cache, True)  # fmt: skip


OPERATORS = [
    Operator("silu_and_mul", ACTIVATION.silu_and_mul_op, ACTIVATION.silu_and_mul,
             ops.silu_and_mul, lambda d: (_t(5, 64, device=d),)),
    Operator("gelu_and_mul", ACTIVATION.gelu_and_mul_op, ACTIVATION.gelu_and_mul,
             ops.gelu_and_mul, lambda d: (_t(5, 80, device=d)[:, :64], "tanh")),
    Operator("silu_and_mul_static_fp8_quant", composite.SILU_AND_MUL_QUANT.op,
             composite.SILU_AND_MUL_QUANT.provider, ops.silu_and_mul_static_fp8_quant,
             lambda d: (_t(5, 64, device=d), _scale(d))),
    Operator("static_scaled_fp8_quant", quant.STATIC_QUANT.op,
             quant.STATIC_QUANT.provider, ops.static_scaled_fp8_quant,
             lambda d: (_t(5, 48, device=d), _scale(d))),
    Operator("dynamic_scaled_fp8_quant", quant.DYNAMIC_QUANT.op,
             quant.DYNAMIC_QUANT.provider, ops.dynamic_scaled_fp8_quant,
             lambda d: (_t(5, 48, device=d), False, None)),
    Operator("dynamic_scaled_fp8_quant per token", quant.DYNAMIC_QUANT.op,
             quant.DYNAMIC_QUANT.provider, ops.dynamic_scaled_fp8_quant,
             lambda d: (_t(2, 5, 48, device=d), True, torch.tensor([1.5], device=d))),
    Operator("rms_norm_static_fp8_quant", composite.NORM_QUANT.op,
             composite.NORM_QUANT.rms_norm_static_fp8_quant, ops.rms_norm_static_fp8_quant,
             lambda d: (_t(5, 64, device=d), _t(64, device=d), 1e-6, _scale(d))),
    Operator("fused_add_rms_norm_static_fp8_quant",
             composite.NORM_QUANT.residual_op,
             composite.NORM_QUANT.fused_add_rms_norm_static_fp8_quant,
             ops.fused_add_rms_norm_static_fp8_quant,
             lambda d: (_t(5, 64, device=d), _t(5, 64, device=d), None, 1e-6, _scale(d))),
    Operator("rotary_embedding", rotary.ROTARY_EMBEDDING_OP, rotary.rotary_embedding_cuda,
             ops.rotary_embedding, _rotary_args),
    Operator("rotary_embedding no key", rotary.ROTARY_EMBEDDING_OP, rotary.rotary_embedding_cuda,
             ops.rotary_embedding,
             lambda d: (*_rotary_args(d)[:2], None, 64, _rotary_args(d)[4], False, 32)),
    Operator("rotary_embedding in place", rotary.ROTARY_EMBEDDING_INPLACE_OP,
             rotary.rotary_embedding_cuda_inplace, ops.rotary_embedding, _rotary_args,
             in_place=True),
]  # fmt: skip
LAUNCHERS = [
    ACTIVATION.gated_launcher,
    composite.SILU_AND_MUL_QUANT.launcher,
    quant.STATIC_QUANT.launcher,
    quant.DYNAMIC_QUANT.quant_launcher,
    quant.DYNAMIC_QUANT.abs_max_launcher,
    quant.DYNAMIC_QUANT.rows_launcher,
    quant.DYNAMIC_QUANT.looped_launcher,
    composite.NORM_QUANT.rows_launcher,
    composite.NORM_QUANT.looped_launcher,
    rotary.ROTARY_LAUNCHER,
]


def _as_op_outputs(entry: Operator, args: tuple[Any, ...], result: Any) -> Any:
    """The operator's result in the op's shape: rotary's list becomes ``(query, key | None)``;
    the in-place operator's outputs are its query and key."""
    if entry.in_place:
        return args[1], args[2]
    if entry.op is ops.rotary_embedding:
        return result[0], (result[1] if args[2] is not None else None)
    return result


@pytest.mark.parametrize("entry", OPERATORS, ids=lambda e: e.name)
def test_operators_pass_opcheck_and_match_native(device: str, entry: Operator) -> None:
    torch.manual_seed(0)
    args = entry.args(device)
    torch.library.opcheck(entry.operator, args)
    expected = entry.native(args)
    called = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
    result = entry.operator(*called)
    assert_outputs_close(entry.op, _as_op_outputs(entry, called, result), expected)


def test_providers_call_their_operators_while_tracing(device: str) -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    launched = [launcher.slow_launches + launcher.cached_keys for launcher in LAUNCHERS]
    for entry in OPERATORS:
        args = entry.args(device)
        with FakeTensorMode() as mode:
            fakes = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
            result = entry.provider(*fakes)
            expected = entry.op.native_fn(*fakes)
        for got, want in zip(_flat(result), _flat(expected), strict=True):
            assert (got is None) == (want is None), entry.name
            if got is not None:
                assert (got.shape, got.dtype) == (want.shape, want.dtype), entry.name
    assert launched == [launcher.slow_launches + launcher.cached_keys for launcher in LAUNCHERS]


def _flat(result: Any) -> list[Any]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


@pytest.mark.parametrize("wrap", [False, True])
def test_torch_compile_full_graph(ir_device: DeviceUnderTest, device: str, wrap: bool) -> None:
    """A decoder MLP in fp8 (norm + quant, gated activation + quant, dynamic quant), compiled
    with the provider first: one graph, eager's results."""
    torch._dynamo.reset()
    x, residual, weight = _t(6, 64, device=device), _t(6, 64, device=device), _t(64, device=device)
    gate_up = _t(6, 128, device=device)
    scale = _scale(device)

    def block(x: torch.Tensor, residual: torch.Tensor, gate_up: torch.Tensor) -> Any:
        q, residual = ops.fused_add_rms_norm_static_fp8_quant(x, residual, weight, 1e-6, scale)
        normed = ops.rms_norm_static_fp8_quant(residual, weight, 1e-6, scale)
        activated = ops.silu_and_mul_static_fp8_quant(gate_up, scale)
        geglu = ops.gelu_and_mul(gate_up, "none")
        dynamic, scales = ops.dynamic_scaled_fp8_quant(ops.silu_and_mul(gate_up), True)
        static = ops.static_scaled_fp8_quant(geglu, scale)
        return q, residual, normed, activated, dynamic, scales, static

    used = [ops.fused_add_rms_norm_static_fp8_quant, ops.rms_norm_static_fp8_quant,
            ops.silu_and_mul_static_fp8_quant, ops.gelu_and_mul, ops.silu_and_mul,
            ops.dynamic_scaled_fp8_quant, ops.static_scaled_fp8_quant]  # fmt: skip
    backend = "aot_eager" if ir_device.emulated else "inductor"
    with enable_torch_wrap(wrap):
        for op in used:
            op.set_default([PROVIDER, "native"])
        eager = block(x, residual, gate_up)
        compiled = torch.compile(block, fullgraph=True, backend=backend)(x, residual, gate_up)
    for got, want in zip(compiled, eager, strict=True):
        torch.testing.assert_close(got.float(), want.float(), atol=0, rtol=0, equal_nan=True)


class _Captured(Exception):
    """Stops a compile once the functional graph is captured (nothing is launched)."""


@pytest.mark.parametrize("entry", OPERATORS, ids=lambda e: e.name)
def test_operators_decompose_into_their_kernels_with_symbolic_shapes(entry: Operator) -> None:
    """torch.compile (dynamic shapes) sees the Triton kernels inside the ir_cuda operators."""
    from torch._dynamo.backends.common import aot_autograd

    from ir_triton import interpreting

    if interpreting():
        pytest.skip("under the interpreter the operators are opaque custom ops")
    graphs: list[torch.fx.GraphModule] = []

    def capture(gm: torch.fx.GraphModule, example_inputs: Any) -> Any:
        graphs.append(gm)
        raise _Captured

    args = entry.args("cpu")
    tensors = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]

    def call(*tensor_args: torch.Tensor) -> Any:
        full = list(args)
        for i, t in zip(tensors, tensor_args, strict=True):
            full[i] = t
        return entry.operator(*full)

    torch._dynamo.reset()
    compiled = torch.compile(call, backend=aot_autograd(fw_compiler=capture), dynamic=True)
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed, match="_Captured"):
        compiled(*(args[i] for i in tensors))
    targets = [str(node.target) for node in graphs[0].graph.nodes if node.op == "call_function"]
    assert "triton_kernel_wrapper_functional" in targets, targets
    assert not any("ir_cuda" in target for target in targets), targets
