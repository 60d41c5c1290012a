"""``torch.compile(..., backend=ir_compile.backend(...))`` end to end (CPU Inductor).

Compiles are the expensive part of this suite: each test compiles one small graph.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

import ir_compile
from ir_op import IrOp, IrOpPriorityConfig, enable_torch_wrap, ops, register_op
from ir_op.testing import assert_outputs_close

ALL_OPS = [getattr(ops, name) for name in ops.__all__]
RESERVED = ("native", "unfused")


def op_inputs(device: str, dtype: torch.dtype = torch.bfloat16) -> dict[str, tuple[Any, ...]]:
    """Every op's generated inputs on ``device`` (the platform's: a kernel set takes no others)."""
    torch.manual_seed(0)
    return {
        op.name: op.generate_inputs(num_tokens=5, hidden_size=48, dtype=dtype, device=device)
        for op in ALL_OPS
    }


def every_op(inputs: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    return {op.name: op(*inputs[op.name]) for op in ALL_OPS}


def kernel_set_provider(op: IrOp) -> str | None:
    supported = [p for p in op.supported_providers() if p not in RESERVED]
    return supported[0] if supported else None


def assignment(kind: str) -> dict[str, list[str]]:
    if kind == "native":
        return {op.name: ["native"] for op in ALL_OPS}
    if kind == "unfused":
        return {op.name: ["unfused"] for op in ALL_OPS if op.is_composite}
    chosen = {op.name: kernel_set_provider(op) for op in ALL_OPS}
    found = {name: [p, "native"] for name, p in chosen.items() if p is not None}
    if not found:
        pytest.skip("no kernel set provider is supported on this platform")
    return found


@pytest.mark.parametrize("kind", ["native", "unfused", "kernel_sets"])
def test_every_op_compiles_to_what_eager_computes(
    compiling: None, ir_device: Any, kind: str
) -> None:
    """Each op under each provider: compiled (lowered through that provider) equals eager."""
    priority = IrOpPriorityConfig.from_dict(assignment(kind))
    inputs = op_inputs(ir_device.tensor_device)
    with priority.set_priority():
        expected = every_op(inputs)
    backend = ir_compile.backend(priority=priority, fusions=())
    got = torch.compile(every_op, backend=backend, fullgraph=True)(inputs)
    report = backend.report
    assert report.not_lowered == {}
    for op in ALL_OPS:
        assert_outputs_close(op, got[op.name], expected[op.name])
        wanted = priority[op.name][0] if op.name in priority else None
        providers = report.providers_of(op.name)
        if wanted is not None:
            assert wanted in providers, (op.name, providers)
        if kind == "unfused" and op.is_composite:  # components lowered by their own priority
            assert all(c.name in report.selected for c in op.components)


def register_norm() -> IrOp:
    @register_op
    def norm(x: Tensor, weight: Tensor, epsilon: float, variance_size: int | None = None) -> Tensor:
        sample = x if variance_size is None else x[..., :variance_size]
        return x * torch.rsqrt(sample.pow(2).mean(-1, keepdim=True) + epsilon) * weight

    def whole_rows(
        x: Tensor, weight: Tensor, epsilon: float, variance_size: int | None = None
    ) -> bool:
        return variance_size is None

    @norm.register_impl("fast", supports_args=whole_rows)
    def norm_fast(
        x: Tensor, weight: Tensor, epsilon: float, variance_size: int | None = None
    ) -> Tensor:
        return x / torch.sqrt(x.square().mean(-1, keepdim=True) + epsilon) * weight

    return norm


def test_selection_recompiles_and_dynamic_shapes(
    isolated: dict[str, IrOp], compiling: None
) -> None:
    norm = register_norm()
    norm.set_default(["fast", "native"])
    w = torch.randn(32)

    def model(x: Tensor) -> Tensor:
        return norm(x, w, 1e-6) + norm(x, w, 1e-6, variance_size=8)

    backend = ir_compile.backend()
    compiled = torch.compile(model, backend=backend, dynamic=True)
    for rows in (5, 5, 9):
        x = torch.randn(rows, 32)
        torch.testing.assert_close(compiled(x), model(x))
    assert backend.compiles == 1  # neither the second call nor another size recompiled
    assert sorted(backend.report.providers_of("norm")) == ["fast", "native"]
    assert sorted(backend.report.selected["norm"].values()) == ["fast", "native"]


def test_torch_wrap_off_inlines_the_eager_choice(compiling: None) -> None:
    x, w = torch.randn(4, 32), torch.randn(32)

    def model(x: Tensor, w: Tensor) -> Tensor:
        return ops.silu_and_mul(ops.rms_norm(x, w, 1e-6))

    on = ir_compile.backend()
    torch.testing.assert_close(torch.compile(model, backend=on)(x, w), model(x, w))
    assert set(on.report.selected) == {"rms_norm", "silu_and_mul"}

    torch._dynamo.reset()
    off = ir_compile.backend()
    with enable_torch_wrap(False):
        torch.testing.assert_close(torch.compile(model, backend=off)(x, w), model(x, w))
    assert off.compiles == 1 and off.report.selected == {}  # no IR node reached the passes


def test_fusions_in_a_compile(compiling: None) -> None:
    g = torch.Generator().manual_seed(0)
    x, r = torch.randn(4, 32, generator=g), torch.randn(4, 32, generator=g)
    w, scale = torch.rand(32, generator=g) + 0.5, torch.tensor([0.01])

    def model(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = x + r
        q = ops.static_scaled_fp8_quant(ops.rms_norm(h, w, 1e-6), scale)
        a = ops.static_scaled_fp8_quant(ops.silu_and_mul(torch.cat([h, x], -1)), scale)
        return q, a, h

    backend = ir_compile.backend()
    got = torch.compile(model, backend=backend)(x, r, w, scale)
    assert backend.report.fusions == {
        "add_rms_norm": 1,
        "fused_add_rms_norm_quant": 1,
        "rms_norm_quant": 0,
        "silu_and_mul_quant": 1,
    }
    for a, b in zip(got, model(x, r, w, scale), strict=True):
        assert_outputs_close(ops.fused_add_rms_norm_static_fp8_quant, a, b)


# ---------------------------------------------------------------------------------------------
# In place: donation, clones, caches


def register_in_place_op() -> IrOp:
    @register_op(allow_inplace=True)
    def scale_add(x: Tensor, x_other: Tensor, factor: float) -> tuple[Tensor, Tensor]:
        return x * factor + x_other, x_other * factor

    @scale_add.register_impl("in_place", inplace=True)
    def scale_add_in_place(x: Tensor, x_other: Tensor, factor: float) -> tuple[Tensor, Tensor]:
        x.mul_(factor).add_(x_other)
        x_other.mul_(factor)
        return x, x_other

    scale_add.set_default(["in_place", "native"])
    return scale_add


def test_in_place_provider_clones_and_inputs(isolated: dict[str, IrOp], compiling: None) -> None:
    scale_add = register_in_place_op()

    def model(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        out, other = scale_add.maybe_inplace(a + 1, b * 2, 3.0)  # intermediates: no clone
        again, _ = scale_add(out, a, 2.0)  # a is the caller's: its clone stays
        return again, other

    a, b = torch.randn(4, 8), torch.randn(4, 8)
    a_before = a.clone()
    backend = ir_compile.backend()
    got = torch.compile(model, backend=backend)(a, b)
    torch.testing.assert_close(got, model(a_before.clone(), b))
    torch.testing.assert_close(a, a_before)  # not donated, not written
    report = backend.report
    assert report.providers_of("scale_add") == {"in_place"}
    assert report.donated_inputs == []
    assert report.clones_removed == 3
    assert list(report.clones_kept.values()) == ["undonated graph input"]


def test_donated_inputs_are_written_and_bypass_the_caches(
    isolated: dict[str, IrOp], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from torch._dynamo.utils import counters
    from torch._inductor import config

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    scale_add = register_in_place_op()

    def donating(a: Tensor, b: Tensor) -> Tensor:
        out, other = scale_add.maybe_inplace(a, b, 3.0)
        return out + other

    a, b = torch.randn(4, 8), torch.randn(4, 8)
    expected = donating(a.clone(), b.clone())
    torch._dynamo.reset()
    bypassed = counters["inductor"]["fxgraph_cache_bypass"]
    backend = ir_compile.backend()
    with config.patch(fx_graph_cache=True):
        got = torch.compile(donating, backend=backend)(a, b)
    torch._dynamo.reset()
    torch.testing.assert_close(got, expected)
    assert len(backend.report.donated_inputs) == 2
    assert backend.report.clones_removed == 2
    torch.testing.assert_close(b, expected - a)  # the kernel wrote into the donated input
    assert counters["inductor"]["fxgraph_cache_bypass"] == bypassed + 1
    assert backend.manager.uuid() is None


def test_reading_a_donated_activation_fails_the_compile(
    isolated: dict[str, IrOp], compiling: None
) -> None:
    scale_add = register_in_place_op()

    def model(a: Tensor, b: Tensor) -> Tensor:
        h = a + 1
        out, _ = scale_add.maybe_inplace(h, b, 3.0)
        return out + h

    with pytest.raises(Exception, match="donates its activation 'x'"):
        torch.compile(model, backend=ir_compile.backend())(torch.randn(2, 2), torch.randn(2, 2))


def test_without_the_pre_grad_pass_maybe_inplace_is_left_and_named(
    isolated: dict[str, IrOp], compiling: None, caplog: pytest.LogCaptureFixture
) -> None:
    from torch._inductor.compile_fx import compile_fx

    scale_add = register_in_place_op()
    manager = ir_compile.IrPassManager()

    def only_post_grad(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        return compile_fx(
            gm, example_inputs, config_patches={"post_grad_custom_post_pass": manager}
        )

    def model(a: Tensor, b: Tensor) -> Tensor:
        out, other = scale_add.maybe_inplace(a * 1, b * 1, 3.0)
        return out + other

    a, b = torch.randn(4, 8), torch.randn(4, 8)
    with caplog.at_level(logging.WARNING, logger="ir_compile"):
        got = torch.compile(model, backend=only_post_grad)(a, b)
    torch.testing.assert_close(got, model(a, b))
    (reason,) = manager.report.not_lowered.values()
    assert "functionalized" in reason
    assert "could not lower" in caplog.text


def test_caches_key_on_the_configuration(
    compiling: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """With Inductor's FX-graph cache on, a compile is keyed (never bypassed) and a second one
    is served from the cache: the passes do not run again, so its report is empty."""
    from torch._dynamo.utils import counters
    from torch._inductor import config

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    x, w = torch.randn(4, 32), torch.randn(32)

    def model(x: Tensor, w: Tensor) -> Tensor:
        return ops.rms_norm(x, w, 1e-6) * 2

    stats = counters["inductor"]
    before = {k: stats[f"fxgraph_cache_{k}"] for k in ("miss", "hit", "bypass")}
    with config.patch(fx_graph_cache=True):
        first = ir_compile.backend()
        torch.compile(model, backend=first)(x, w)
        torch._dynamo.reset()
        second = ir_compile.backend()
        torch.testing.assert_close(torch.compile(model, backend=second)(x, w), model(x, w))
        torch._dynamo.reset()
        other = ir_compile.backend(fusions=["add_rms_norm"])  # another configuration
        torch.compile(model, backend=other)(x, w)
    after = {k: stats[f"fxgraph_cache_{k}"] - before[k] for k in before}
    assert after == {"miss": 2, "hit": 1, "bypass": 0}
    assert first.report.selected and other.report.selected
    assert second.report.selected == {}
