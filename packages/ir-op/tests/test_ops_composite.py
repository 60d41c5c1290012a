"""The composite ops of ir_op.ops: references, native == composition, unfused == dispatch."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

from ir_op import IrOp, enable_torch_wrap, ops
from ir_op.defaults import default_priority
from ir_op.ops._inputs import fp8_scale_for
from ir_op.ops.fp8 import FP8_DTYPES
from ir_op.testing import assert_outputs_close, forced_platform, random_rows, unset_priorities
from ir_op.testing.references import REFERENCES, rounded_like

pytestmark = pytest.mark.usefixtures("native_priorities")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
LEADING = [(1,), (7,), (2, 3, 5), (0,)]
COMPOSITES = {
    ops.rms_norm_static_fp8_quant: (ops.rms_norm, ops.static_scaled_fp8_quant),
    ops.fused_add_rms_norm_static_fp8_quant: (
        ops.fused_add_rms_norm,
        ops.static_scaled_fp8_quant,
    ),
    ops.silu_and_mul_static_fp8_quant: (ops.silu_and_mul, ops.static_scaled_fp8_quant),
}
COMPOSITE_OPS = list(COMPOSITES)


def random_args(
    op: IrOp,
    leading: tuple[int, ...],
    hidden: int,
    dtype: torch.dtype,
    strided: bool,
    fp8_dtype: torch.dtype,
) -> tuple[Any, ...]:
    """Arguments of ``op`` on ``[*leading, hidden]`` rows, the scale calibrated on them."""
    if op is ops.silu_and_mul_static_fp8_quant:
        x = random_rows(leading, 2 * hidden, dtype, strided=strided)
        return x, fp8_scale_for(ops.silu_and_mul(x), fp8_dtype), fp8_dtype
    x = random_rows(leading, hidden, dtype, strided=strided)
    weight = (1 + 0.5 * torch.randn(hidden)).to(dtype)
    if op is ops.rms_norm_static_fp8_quant:
        scale = fp8_scale_for(ops.rms_norm(x, weight, 1e-6), fp8_dtype, 0.8)
        return x, weight, 1e-6, scale, fp8_dtype
    residual = random_rows(leading, hidden, dtype, strided=strided)
    scale = fp8_scale_for(ops.fused_add_rms_norm(x, residual, weight, 1e-6)[0], fp8_dtype, 0.8)
    return x, residual, weight, 1e-6, scale, fp8_dtype


def compose_by_hand(op: IrOp, args: tuple[Any, ...], call: Callable[[IrOp], Any]) -> Any:
    """The composition written out, each component called through ``call(component)``."""
    first, quant = COMPOSITES[op]
    scale, fp8_dtype = args[-2], args[-1]
    if op is ops.fused_add_rms_norm_static_fp8_quant:
        out, residual = call(first)(*args[:4])
        return call(quant)(out, scale, fp8_dtype), residual
    return call(quant)(call(first)(*args[:-2]), scale, fp8_dtype)


def assert_identical(actual: Any, expected: Any) -> None:
    """Same dtypes, shapes and bits (fp8 compared as bytes)."""

    def bits(t: Tensor) -> Tensor:
        return t.view(torch.uint8) if t.element_size() == 1 else t

    actual = actual if isinstance(actual, tuple) else (actual,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape
        assert torch.equal(bits(a), bits(e))


@pytest.fixture
def spied_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the component ops called, in order. A call of an op is its dispatch: through
    ``IrOp.dispatch`` (torch wrap on) or the same selection inlined in ``IrOp.__call__`` (wrap
    off, the eager hot path), so the spy sits on ``__call__``, which both go through."""
    calls: list[str] = []
    components = {c for components in COMPOSITES.values() for c in components}
    original = IrOp.__call__

    def spy(self: IrOp, *args: Any, **kwargs: Any) -> Any:
        if self in components:
            calls.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(IrOp, "__call__", spy)
    return calls


def test_components_are_exposed() -> None:
    for op, components in COMPOSITES.items():
        assert op.is_composite and op.components == components
        assert list(op.impls)[:2] == ["native", "unfused"]  # then installed kernel sets'
    assert not ops.rms_norm.is_composite and ops.rms_norm.components == ()


@pytest.mark.parametrize("op", COMPOSITE_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("fp8_dtype", FP8_DTYPES)
def test_native_matches_reference_and_composition(
    op: IrOp, dtype: torch.dtype, leading: tuple[int, ...], strided: bool, fp8_dtype: torch.dtype
) -> None:
    torch.manual_seed(len(leading) + strided)
    args = random_args(op, leading, 385, dtype, strided, fp8_dtype)
    actual = op(*args)
    assert_outputs_close(op, actual, rounded_like(REFERENCES[op.name](*args), actual))
    # native is the composition of the components' native functions, bit for bit
    assert_identical(actual, compose_by_hand(op, args, lambda c: c.native_fn))


@pytest.mark.parametrize("op", COMPOSITE_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("wrap", [True, False])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_unfused_equals_composition_through_dispatch(
    op: IrOp, wrap: bool, dtype: torch.dtype, spied_dispatch: list[str]
) -> None:
    args = random_args(op, (9,), 128, dtype, True, torch.float8_e4m3fn)
    spied_dispatch.clear()  # the scale's calibration ran components
    with op.set_priority(["unfused"]), enable_torch_wrap(wrap):
        unfused = op(*args)
        assert spied_dispatch == [c.name for c in op.components]  # each component dispatched
        by_hand = compose_by_hand(op, args, lambda c: c)
    assert_identical(unfused, by_hand)
    with op.set_priority(["native"]):
        assert_identical(unfused, op(*args))  # components at native: exactly the native op


@pytest.mark.parametrize("op", COMPOSITE_OPS, ids=lambda o: o.name)
def test_native_never_dispatches_components(op: IrOp, spied_dispatch: list[str]) -> None:
    args = random_args(op, (3,), 64, torch.bfloat16, False, torch.float8_e4m3fn)
    spied_dispatch.clear()
    with op.set_priority(["native"]):
        op(*args)
    assert spied_dispatch == []


@pytest.mark.parametrize("op", COMPOSITE_OPS, ids=lambda o: o.name)
def test_unfused_traces_to_the_components(op: IrOp) -> None:
    """The pattern a fusion pass rewrites into ``op``."""
    args = op.generate_inputs(num_tokens=4, hidden_size=32, dtype=torch.bfloat16)
    tensors = [i for i, a in enumerate(args) if isinstance(a, Tensor)]

    def unfused(*tensor_args: Tensor) -> Any:
        full = list(args)
        for i, t in zip(tensors, tensor_args, strict=True):
            full[i] = t
        return op.impls["unfused"].impl_fn(*full)

    gm = make_fx(unfused)(*[args[i] for i in tensors])
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    targets = [t for t in targets if t is not operator.getitem]
    assert targets == [c.torch_op for c in op.components]


@pytest.mark.parametrize("op", COMPOSITE_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("platform", ["cuda", "rocm", "xpu"])
def test_gpu_defaults_put_unfused_before_native(op: IrOp, platform: str) -> None:
    with unset_priorities(), forced_platform(platform):
        for compiling in (False, True):
            providers = default_priority(op, compiling=compiling)
            assert providers[-2:] == ["unfused", "native"]
        if platform not in op.impls:  # no fused kernel installed: the components' kernels
            assert op.get_priority() == ["unfused"]
    with forced_platform("cpu"):
        assert default_priority(op, compiling=False) == []


def test_composites_validate_their_arguments() -> None:
    scale = torch.tensor([0.1])
    with pytest.raises(
        ValueError,
        match=r"silu_and_mul_static_fp8_quant: x must have an even last dimension .* \[2, 7\]",
    ):
        ops.silu_and_mul_static_fp8_quant(torch.randn(2, 7), scale)
    with pytest.raises(ValueError, match="scale must be a one-element float32 tensor"):
        ops.rms_norm_static_fp8_quant(torch.randn(2, 8), None, 1e-6, torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="fp8_dtype=torch.float16 is not a supported fp8 format"):
        ops.rms_norm_static_fp8_quant(torch.randn(2, 8), None, 1e-6, scale, torch.float16)


def test_residual_is_the_rounded_sum_and_quantization_reads_the_normalized_row() -> None:
    x, residual = torch.randn(4, 64, dtype=torch.bfloat16), torch.randn(4, 64, dtype=torch.bfloat16)
    scale = torch.tensor([0.02])
    q, residual_out = ops.fused_add_rms_norm_static_fp8_quant(x, residual, None, 1e-6, scale)
    assert torch.equal(residual_out, (x.float() + residual.float()).to(torch.bfloat16))
    normed, _ = ops.fused_add_rms_norm(x, residual, None, 1e-6)
    assert torch.equal(q.float(), ops.static_scaled_fp8_quant(normed, scale).float())
