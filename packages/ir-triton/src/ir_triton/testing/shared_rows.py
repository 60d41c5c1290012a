"""``SharedRowKernelsChecks``: the tests of a kernel set built on this package's shared bodies.

A kernel set that instantiates :class:`~ir_triton.kernels.norm.RmsNormProviders`,
:class:`~ir_triton.kernels.activation.GatedActivationProviders` and
:class:`~ir_triton.kernels.static_quant.StaticFp8QuantProviders` with its own
:class:`~ir_triton.configs.RowLaunch` subclasses it in its tests, naming those objects::

    class TestSharedRowKernels(SharedRowKernelsChecks):
        platform = provider = "rocm"
        norm, activation, static_quant = NORM, ACTIVATION, STATIC_QUANT
        fp8_dtypes = (torch.float8_e4m3fnuz, torch.float8_e4m3fn)

What they check, on the kernel set's platform (real, or emulated with Triton's interpreter):
the providers are registered with the shared ``supports_args``; with a tiny
:class:`~ir_triton.configs.RowTable` every kernel takes its looped or column-chunked path and
still matches native; an in-place call given one buffer for ``x`` and the residual computes out
of place; providers call their ``torch.ops`` operators while tracing (no launch); the operators
pass ``opcheck`` and match native; and a block of these ops compiles to one graph that matches
eager. What differs between kernel sets (tables, launch options, fp8 formats) is in their own
tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import torch

from ir_op import IrOp, enable_torch_wrap, ops
from ir_op.testing import assert_outputs_close, preserved_priorities, random_rows
from ir_op.testing.pytest_plugin import DeviceUnderTest
from ir_triton import supports as shared
from ir_triton.configs import RowTable
from ir_triton.kernels.activation import GatedActivationProviders
from ir_triton.kernels.norm import RmsNormProviders
from ir_triton.kernels.static_quant import StaticFp8QuantProviders

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

Call = tuple[IrOp, Callable[..., Any], tuple[Any, ...]]


def _bf16(device: str, *shape: int, strided: bool = False) -> torch.Tensor:
    return random_rows(shape[:-1], shape[-1], torch.bfloat16, strided=strided, device=device)


class SharedRowKernelsChecks:
    """Tests of a kernel set's shared row-wise providers (see the module doc)."""

    platform: ClassVar[str]
    """The platform the kernel set runs on; other sessions skip these tests."""
    provider: ClassVar[str]
    norm: ClassVar[RmsNormProviders]
    activation: ClassVar[GatedActivationProviders]
    static_quant: ClassVar[StaticFp8QuantProviders]
    fp8_dtypes: ClassVar[tuple[torch.dtype, ...]]
    """The fp8 formats the static quantization provider writes, the first one used where one is
    enough (the provider is called directly, so every format its kernel takes is tested)."""

    def _device(self, ir_device: DeviceUnderTest) -> str:
        if ir_device.name != self.platform:
            pytest.skip(f"the kernels run on the {self.platform} platform (real or emulated) only")
        return ir_device.tensor_device

    # -- registration ---------------------------------------------------------------------------

    def test_providers_take_the_shared_argument_checks(self) -> None:
        """The kernels take what every row-wise Triton kernel set takes (tested in ir-op)."""
        expected = {
            "rms_norm": shared.rms_norm_supports_args,
            "fused_add_rms_norm": shared.fused_add_rms_norm_supports_args,
            "silu_and_mul": shared.silu_and_mul_supports_args,
            "gelu_and_mul": shared.gelu_and_mul_supports_args,
            "gelu_and_mul_sparse": shared.gelu_and_mul_sparse_supports_args,
        }
        for name, predicate in expected.items():
            assert IrOp.registry[name].impls[self.provider]._supports_args is predicate, name

    # -- kernels --------------------------------------------------------------------------------

    def _calls(self, device: str, width: int) -> list[Call]:
        def t(*shape: int, strided: bool = False) -> torch.Tensor:
            return _bf16(device, *shape, strided=strided)

        norm, activation = self.norm, self.activation
        scale = torch.tensor([0.02], device=device)
        calls: list[Call] = [
            (ops.rms_norm, norm.rms_norm, (t(5, width), t(width), 1e-6)),
            (ops.rms_norm, norm.rms_norm, (t(5, width, strided=True), None, 1e-6, width // 3)),
            (
                ops.fused_add_rms_norm,
                norm.fused_add_rms_norm,
                (t(3, width), t(3, width), None, 1e-5),
            ),
            (
                ops.fused_add_rms_norm,
                norm.fused_add_rms_norm_inplace,
                (t(3, width, strided=True), t(3, width), t(width), 1e-5),
            ),
            (ops.silu_and_mul, activation.silu_and_mul, (t(4, 2 * width),)),
            (ops.gelu_and_mul, activation.gelu_and_mul, (t(4, 2 * width), "tanh")),
            (ops.gelu_and_mul, activation.gelu_and_mul, (t(4, 2 * width, strided=True), "none")),
            (ops.gelu_and_mul_sparse, activation.gelu_and_mul_sparse, (t(4, 2 * width), 0.5)),
            (
                ops.gelu_and_mul_sparse,
                activation.gelu_and_mul_sparse,
                (t(4, 2 * width, strided=True), -1.0, "tanh"),
            ),
        ]
        for i, fp8_dtype in enumerate(self.fp8_dtypes):
            x = t(4, width, strided=i % 2 == 0)
            calls.append(
                (ops.static_scaled_fp8_quant, self.static_quant.provider, (x, scale, fp8_dtype))
            )
        return calls

    @pytest.mark.parametrize("width", [63, 64, 65, 97])
    def test_looped_and_column_chunked_kernels_match_native(
        self, ir_device: DeviceUnderTest, monkeypatch: pytest.MonkeyPatch, width: int
    ) -> None:
        """With a tiny table every kernel takes its looped or column-chunked path on small rows."""
        device = self._device(ir_device)
        for providers in (self.norm, self.activation, self.static_quant):
            tiny_launch = dataclasses.replace(providers.launch, table=TINY_TABLE)
            monkeypatch.setattr(providers, "launch", tiny_launch)
        monkeypatch.setattr(self.static_quant, "plans", {})  # plans made with the real table
        for op, provider, args in self._calls(device, width):
            expected = op.native_fn(
                *[a.clone() if isinstance(a, torch.Tensor) else a for a in args]
            )
            assert_outputs_close(op, provider(*args), expected)

    def test_one_buffer_for_x_and_residual_computes_out_of_place(
        self, ir_device: DeviceUnderTest
    ) -> None:
        device = self._device(ir_device)
        x = random_rows([5], 64, torch.bfloat16, device=device)
        w = random_rows([], 64, torch.bfloat16, device=device)
        expected = ops.fused_add_rms_norm.native_fn(x, x, w, 1e-6)
        with preserved_priorities():
            ops.fused_add_rms_norm.set_default([self.provider, "native"])
            assert ops.fused_add_rms_norm.dispatch(x, x, w, 1e-6).provider == self.provider
            out, residual = ops.fused_add_rms_norm.maybe_inplace(x, x, w, 1e-6)
        assert out.data_ptr() != x.data_ptr()
        assert_outputs_close(ops.fused_add_rms_norm, (out, residual), expected)

    # -- tracing and torch.compile --------------------------------------------------------------

    def test_providers_call_their_operators_while_tracing(self, ir_device: DeviceUnderTest) -> None:
        from torch._subclasses.fake_tensor import FakeTensorMode

        norm, activation, fp8_dtype = self.norm, self.activation, self.fp8_dtypes[0]
        launchers = (
            norm.rows_launcher,
            norm.fused_rows_launcher,
            norm.looped_launcher,
            activation.gated_launcher,
            activation.sparse_rows_launcher,
            self.static_quant.launcher,
        )
        launched = [launcher.slow_launches + launcher.cached_keys for launcher in launchers]
        with FakeTensorMode() as mode:
            x = mode.from_tensor(torch.randn(3, 64, device=ir_device.tensor_device))
            w = mode.from_tensor(torch.randn(64, device=ir_device.tensor_device))
            scale = mode.from_tensor(torch.ones(1, device=ir_device.tensor_device))
            assert norm.rms_norm(x, w, 1e-6).shape == (3, 64)
            out, residual = norm.fused_add_rms_norm(x, x, w, 1e-6)
            assert out.shape == residual.shape == (3, 64)
            assert norm.fused_add_rms_norm_inplace(x, x.clone(), w, 1e-6)[0] is x
            assert activation.silu_and_mul(x).shape == (3, 32)
            assert activation.gelu_and_mul(x, "tanh").shape == (3, 32)
            assert activation.gelu_and_mul_sparse(x, 1.0).shape == (3, 32)
            q = self.static_quant.provider(x, scale, fp8_dtype)
            assert (q.shape, q.dtype) == ((3, 64), fp8_dtype)
        assert launched == [launcher.slow_launches + launcher.cached_keys for launcher in launchers]

    def test_kernel_operators_pass_opcheck_and_match_native(
        self, ir_device: DeviceUnderTest
    ) -> None:
        device = self._device(ir_device)

        def t(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, device=device).to(torch.bfloat16)

        norm, activation = self.norm, self.activation
        scale = torch.tensor([0.05], device=device)
        cases: list[tuple[torch._ops.OpOverload, IrOp, tuple[Any, ...]]] = [
            (norm.op, ops.rms_norm, (t(5, 64), t(64), 1e-6, None)),
            (norm.op, ops.rms_norm, (t(5, 80)[:, :64], None, 1e-6, 16)),
            (norm.residual_op, ops.fused_add_rms_norm, (t(5, 64), t(5, 64), t(64), 1e-6, None)),
            (activation.silu_and_mul_op, ops.silu_and_mul, (t(5, 64),)),
            (activation.gelu_and_mul_op, ops.gelu_and_mul, (t(5, 64), "tanh")),
            (activation.gelu_and_mul_sparse_op, ops.gelu_and_mul_sparse, (t(5, 64), 1.2, "tanh")),
            (
                self.static_quant.op,
                ops.static_scaled_fp8_quant,
                (t(5, 64), scale, self.fp8_dtypes[0]),
            ),
        ]
        for operator, op, args in cases:
            torch.library.opcheck(operator, args)
            assert_outputs_close(op, operator(*args), op.native_fn(*args))
        x, residual = (torch.randn(5, 64, device=device) for _ in range(2))
        expected = ops.fused_add_rms_norm.native_fn(x, residual, None, 1e-6)
        norm.inplace_op(x, residual, None, 1e-6, None)
        assert_outputs_close(ops.fused_add_rms_norm, (x, residual), expected)

    @pytest.mark.parametrize("wrap", [False, True])
    def test_torch_compile_full_graph(self, ir_device: DeviceUnderTest, wrap: bool) -> None:
        """Compiled with the provider first, the ops trace to one graph and match eager."""
        device = self._device(ir_device)
        torch._dynamo.reset()
        x = torch.randn(6, 64, device=device).to(torch.bfloat16)
        r = torch.randn(6, 64, device=device).to(torch.bfloat16)
        w = torch.randn(64, device=device).to(torch.bfloat16)
        scale = torch.tensor([0.05], device=device)
        fp8_dtype = self.fp8_dtypes[0]

        def block(x: torch.Tensor, r: torch.Tensor, w: torch.Tensor) -> Any:
            normed = ops.rms_norm(x, w, 1e-6)
            out, residual = ops.fused_add_rms_norm(normed, r, w, 1e-6)
            act = ops.silu_and_mul(out) + ops.gelu_and_mul(out, "tanh")
            return ops.static_scaled_fp8_quant(act, scale, fp8_dtype), residual

        # Inductor needs a C++ compiler for CPU tensors; aot_eager still traces, functionalizes
        # and runs the graph, which is what this checks when emulated.
        backend = "aot_eager" if ir_device.emulated else "inductor"
        used = (
            ops.rms_norm,
            ops.fused_add_rms_norm,
            ops.silu_and_mul,
            ops.gelu_and_mul,
            ops.static_scaled_fp8_quant,
        )
        with preserved_priorities(), enable_torch_wrap(wrap):
            for op in used:
                op.set_default([self.provider, "native"])
            eager = block(x, r, w)
            compiled = torch.compile(block, fullgraph=True, backend=backend)(x, r, w)
        torch._dynamo.reset()
        assert_outputs_close(ops.static_scaled_fp8_quant, compiled[0], eager[0])
        assert_outputs_close(ops.fused_add_rms_norm, compiled[1], eager[1])
