"""Bad input, gradients and vLLM IR's semantics on the native provider (the kernel sets' suites
run the same checks on theirs through the conformance kit)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from torch import Tensor

from ir_op import IrOpPriorityConfig, enable_torch_wrap, ops, register_op
from ir_op.op import IrOp
from ir_op.testing import isolated_registry
from ir_op.testing.bad_inputs import BadInput, bad_input_cases, check_rejects_bad_input
from ir_op.testing.semantics import (
    check_gradients,
    check_weight_dtypes,
    native_weight_reference,
    weight_dtype_pairs,
)

ALL_OPS = [op for op in IrOp.registry.values() if op.validate is not None]


def test_every_builtin_op_validates() -> None:
    assert {op.name for op in ALL_OPS} == set(ops.__all__)


@pytest.mark.parametrize("case", bad_input_cases(ALL_OPS), ids=lambda c: c.id)
def test_rejects_bad_input(case: BadInput) -> None:
    check_rejects_bad_input(case, "native", "cpu")


def test_the_issues_examples() -> None:
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match=r"rms_norm: x must be a floating-point tensor.*int32"):
        ops.rms_norm(torch.tensor([[3, 4, 0, -5]], dtype=torch.int32), None, 1e-6)
    with pytest.raises(ValueError, match=r"weight must be .*\[hidden\] = \[4\].*shape \[2, 4, 4\]"):
        ops.rms_norm(x, torch.ones(2, 4, 4), 1e-6)
    with pytest.raises(ValueError, match=r"x_residual must be .* \[2, 4\], got .*\[3, 1, 4\]"):
        ops.fused_add_rms_norm(x, torch.ones(3, 1, 4), None, 1e-6)
    with pytest.raises(TypeError, match=r"rms_norm: x must be .*got None"):
        ops.rms_norm(None, None, 1e-6)  # type: ignore[arg-type]
    message = r"epsilon must be a finite Python float >= 0, got a "
    with pytest.raises(TypeError, match=message), enable_torch_wrap(False):
        ops.rms_norm(x, None, torch.tensor(1e-6))  # type: ignore[arg-type]


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
def test_gradients(op: IrOp) -> None:
    check_gradients(op, "native", "cpu")


@pytest.mark.parametrize(
    "op", [op for op in ALL_OPS if "weight" in op.signature.parameter_names], ids=lambda o: o.name
)
@pytest.mark.parametrize(
    "dtypes", weight_dtype_pairs(), ids=lambda d: f"{d[0]}-{d[1]}".replace("torch.", "")
)
def test_weight_dtypes(op: IrOp, dtypes: tuple[torch.dtype, torch.dtype]) -> None:
    check_weight_dtypes(op, "native", "cpu", *dtypes)


NATIVE_NORMS = IrOpPriorityConfig(rms_norm=["native"], fused_add_rms_norm=["native"])


@pytest.mark.parametrize("weight_dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("x_dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_norms_follow_vllm_weight_rule(x_dtype: torch.dtype, weight_dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 256).to(x_dtype)
    residual = torch.randn(8, 256).to(x_dtype)
    w = (1 + 0.5 * torch.randn(256)).to(weight_dtype)
    want = native_weight_reference(x, w, 1e-6)
    # The native semantics, bit for bit (kernel providers are held to tolerances by the kit).
    with NATIVE_NORMS.set_priority():
        got = ops.rms_norm(x, w, 1e-6)
        out, res = ops.fused_add_rms_norm(x, residual, w, 1e-6)
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    torch.testing.assert_close(out, native_weight_reference(x, w, 1e-6, residual), atol=0, rtol=0)
    torch.testing.assert_close(res, (x.float() + residual.float()).to(x_dtype), atol=0, rtol=0)


def test_float32_weight_rounds_once_where_the_old_rule_rounded_twice() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 512).to(torch.bfloat16)
    w = 1 + 0.01 * torch.randn(512)  # Gemma's 1 + w, kept in float32
    x32 = x.float()
    normalized = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-6)
    twice = (normalized.to(torch.bfloat16).float() * w).to(torch.bfloat16)
    with NATIVE_NORMS.set_priority():
        out = ops.rms_norm(x, w, 1e-6)
    assert torch.equal(out, (normalized * w).to(torch.bfloat16))
    assert not torch.equal(out, twice)


@pytest.mark.parametrize("op_name", ["rms_norm", "silu_and_mul", "gelu_and_mul_sparse"])
def test_float64_is_computed_in_float64(op_name: str) -> None:
    op = IrOp.registry[op_name]
    args = op.generate_inputs(num_tokens=4, hidden_size=64, dtype=torch.float64)
    out = op(*args)
    assert out.dtype == torch.float64
    in32 = [a.float() if isinstance(a, Tensor) else a for a in args]
    coarse = op(*in32).double()
    assert not torch.equal(out, coarse)  # float32 math would have lost the low bits
    torch.testing.assert_close(out, coarse, atol=1e-5, rtol=1e-5)


def test_float64_fused_add_rms_norm_and_rotary() -> None:
    x, res, w, eps, _ = ops.fused_add_rms_norm.generate_inputs(
        num_tokens=4, hidden_size=64, dtype=torch.float64
    )
    out, residual_out = ops.fused_add_rms_norm(x, res, w, eps)
    torch.testing.assert_close(out, native_weight_reference(x, w, eps, res), atol=0, rtol=0)
    assert torch.equal(residual_out, x + res)
    args = ops.rotary_embedding.generate_inputs(num_tokens=4, hidden_size=256, dtype=torch.float64)
    q, k = ops.rotary_embedding(*args)
    assert q.dtype == torch.float64 and k is not None and k.dtype == torch.float64


def test_functools_wraps_provider_registers() -> None:
    # The wrapper lives in a module without Tensor in scope, as a kernel set's might: the
    # native's string annotations must be read where the native was defined.
    namespace: dict[str, Any] = {"native": ops.rms_norm.native_fn, "calls": []}
    exec(
        "import functools\n"
        "@functools.wraps(native)\n"
        "def wrapper(*args, **kwargs):\n"
        "    calls.append(1)\n"
        "    return native(*args, **kwargs)\n",
        namespace,
    )
    with isolated_registry():
        op = register_op(name="wraps_norm")(ops.rms_norm.native_fn)
        op.register_impl("wrapped")(namespace["wrapper"])
        with op.set_priority(["wrapped"]), enable_torch_wrap(False):
            op(torch.randn(2, 8), None, 1e-6)
    assert namespace["calls"] == [1]


def test_validate_is_checked_at_registration_and_runs_once_per_call() -> None:
    seen: list[str] = []

    def native(x: Tensor, scale: float) -> Tensor:
        return x * scale

    def validate(x: Tensor, scale: float) -> None:
        seen.append("validate")
        if not isinstance(x, Tensor):
            raise TypeError(f"scaled: x must be a tensor, got {x!r}")

    def wrong(x: Tensor) -> None: ...

    with isolated_registry():
        with pytest.raises(ValueError, match="validate takes 1 parameters"):
            register_op(name="bad_validate", validate=wrong)(native)
        with pytest.raises(TypeError, match="differentiable must be a bool"):
            register_op(name="bad_flag", differentiable="no")(native)  # type: ignore[call-overload]
        op = register_op(name="scaled", validate=validate)(native)
        for wrap in (True, False):
            seen.clear()
            with enable_torch_wrap(wrap):
                op(torch.ones(2), 2.0)
            assert seen == ["validate"], f"wrap={wrap}: {seen}"
        with pytest.raises(TypeError, match="scaled: x must be a tensor"):
            op([1.0], 2.0)


def test_grad_through_a_provider_runs_native_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    used: list[str] = []

    def native(x: Tensor, scale: float) -> Tensor:
        used.append("native")
        return x * scale

    def kernel(x: Tensor, scale: float) -> Tensor:
        used.append("kernel")
        return (x * scale).detach()

    with isolated_registry():
        op = register_op(name="scaled_grad")(native)
        op.register_impl("kernel")(kernel)
        with op.set_priority(["kernel", "native"]), caplog.at_level(logging.WARNING):
            for wrap in (True, False):
                x = torch.ones(3, requires_grad=True)
                with enable_torch_wrap(wrap):
                    op(x, 2.0).sum().backward()
                assert x.grad is not None and torch.equal(x.grad, torch.full((3,), 2.0))
            assert used == ["native", "native"]
            with torch.no_grad():
                op(x, 2.0)
            with torch.inference_mode():
                op(x, 2.0)
            assert used[2:] == ["kernel", "kernel"]
        warnings = [r for r in caplog.records if "requires grad" in r.getMessage()]
        assert len(warnings) == 1 and "'kernel'" in warnings[0].getMessage()


def test_non_differentiable_op_refuses_and_says_how() -> None:
    x = torch.randn(2, 8, requires_grad=True)
    with pytest.raises(ValueError, match=r"torch.no_grad\(\) or torch.inference_mode\(\)"):
        ops.static_scaled_fp8_quant(x, torch.ones(1))
    with pytest.raises(ValueError, match="call rms_norm separately"):
        ops.rms_norm_static_fp8_quant(x, None, 1e-6, torch.ones(1))
    with torch.no_grad():
        assert ops.static_scaled_fp8_quant(x, torch.ones(1)).dtype == torch.float8_e4m3fn
    assert ops.static_scaled_fp8_quant(x.detach(), torch.ones(1)).dtype == torch.float8_e4m3fn


@pytest.mark.parametrize("symbolic", [False, True], ids=["static", "symbolic"])
@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
def test_validators_take_fake_tensors(op: IrOp, symbolic: bool) -> None:
    from ir_op.testing.conformance import _fake_args

    args = op.generate_inputs(num_tokens=3, hidden_size=64, dtype=torch.bfloat16)
    op.validate(*_fake_args(args, symbolic))  # type: ignore[misc]  # accepts, shapes only


@pytest.mark.parametrize("wrap", [True, False], ids=["wrap_on", "wrap_off"])
def test_validation_under_torch_compile(wrap: bool) -> None:
    def f(x: Tensor, w: Tensor) -> Tensor:
        out: Tensor = ops.rms_norm(x, w, 1e-6)
        return out

    compiled = torch.compile(f, backend="eager", fullgraph=False)
    x = torch.randn(4, 64)
    with enable_torch_wrap(wrap):
        torch.testing.assert_close(
            compiled(x, torch.ones(64)), ops.rms_norm(x, torch.ones(64), 1e-6)
        )
        with pytest.raises(ValueError, match=r"rms_norm: weight must be .*\[4, 64\]"):
            compiled(x, torch.ones(4, 64))
    torch._dynamo.reset()


def test_gradcheck_of_the_norms_and_activations() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 16, dtype=torch.float64, requires_grad=True)
    r = torch.randn(3, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: ops.rms_norm(x, w, 1e-6), (x, w))
    assert torch.autograd.gradcheck(
        lambda x, r, w: ops.fused_add_rms_norm(x, r, w, 1e-6), (x, r, w)
    )
    assert torch.autograd.gradcheck(ops.silu_and_mul, (x,))
    assert torch.autograd.gradcheck(lambda x: ops.gelu_and_mul(x, "tanh"), (x,))
