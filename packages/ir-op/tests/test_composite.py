"""Composite ops: declaration, native vs unfused, the unfused provider's priority rules."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

from ir_op import IrOp, IrOpPriorityConfig, enable_torch_wrap, register_op
from ir_op.composite import Components
from ir_op.explain import explain
from ir_op.testing import forced_platform


def scale(x: Tensor, factor: float) -> Tensor:
    return x * factor


def scale_plus_one(x: Tensor, factor: float) -> Tensor:
    """A provider that differs from native, so tests can see which one ran."""
    return x * factor + 1


def shift(x: Tensor, amount: float) -> Tensor:
    return x + amount


def shift_twice(x: Tensor, amount: float) -> Tensor:
    return x + 2 * amount


def pair(x: Tensor, x_other: Tensor) -> tuple[Tensor, Tensor]:
    return x + x_other, x - x_other


def scale_then_shift(components: Components, x: Tensor, factor: float, amount: float) -> Tensor:
    """Scale, then shift."""
    scaled = components.scale(x, factor)
    shifted: Tensor = components.shift(scaled, amount)
    return shifted


def fused_scale_shift(x: Tensor, factor: float, amount: float) -> Tensor:
    return torch.addcmul(torch.full_like(x, amount), x, torch.full_like(x, factor))


def small_only(x: Tensor, factor: float, amount: float) -> bool:
    return x.numel() < 100


@pytest.fixture
def parts(isolated: dict[str, IrOp]) -> tuple[IrOp, IrOp, IrOp]:
    a = register_op(scale)
    a.register_impl("plusone")(scale_plus_one)
    b = register_op(shift)
    b.register_impl("twice")(shift_twice)
    c = register_op(composite_of=[a, b])(scale_then_shift)
    return a, b, c


# -- declaration ----------------------------------------------------------------------------


def test_composite_op_shape(parts: tuple[IrOp, IrOp, IrOp]) -> None:
    a, b, c = parts
    assert c.name == "scale_then_shift"
    assert c.components == (a, b) and c.is_composite
    assert a.components == () and not a.is_composite
    assert c.schema == "(Tensor x, float factor, float amount) -> Tensor"
    assert list(c.impls) == ["native", "unfused"]
    assert c.signature.parameter_names == ["x", "factor", "amount"]
    assert c.activations == ["x"]
    assert str(c) == "IrOp('scale_then_shift') - Scale, then shift."
    assert c.impls["unfused"].supports_all_args and c.impls["unfused"].supported


def test_native_is_the_composition_of_native_components(parts: tuple[IrOp, IrOp, IrOp]) -> None:
    a, b, c = parts
    x = torch.randn(5, 3)
    with a.set_priority(["plusone"]), b.set_priority(["twice"]):  # components' priorities...
        out = c.native_fn(x, 2.0, 0.5)
        with c.set_priority(["native"]):
            via_dispatch = c(x, 2.0, 0.5)
    expected = shift(scale(x, 2.0), 0.5)  # ...do not reach native
    assert torch.equal(out, expected) and torch.equal(via_dispatch, expected)


@pytest.mark.parametrize("wrap", [True, False])
@pytest.mark.parametrize(
    ("prio_a", "prio_b"), [(["native"], ["native"]), (["plusone"], ["native"]), ([], ["twice"])]
)
def test_unfused_runs_each_component_through_its_dispatch(
    parts: tuple[IrOp, IrOp, IrOp], wrap: bool, prio_a: list[str], prio_b: list[str]
) -> None:
    a, b, c = parts
    x = torch.randn(4, 6)
    with (
        a.set_priority(prio_a),
        b.set_priority(prio_b),
        c.set_priority(["unfused"]),
        enable_torch_wrap(wrap),
    ):
        out = c(x, 3.0, -1.0)
        by_hand = b(a(x, 3.0), -1.0)  # the composition, each component dispatched
    assert torch.equal(out, by_hand)
    expected_a = scale_plus_one if prio_a == ["plusone"] else scale
    expected_b = shift_twice if prio_b == ["twice"] else shift
    assert torch.equal(out, expected_b(expected_a(x, 3.0), -1.0))


def test_unfused_traces_to_the_component_pattern(parts: tuple[IrOp, IrOp, IrOp]) -> None:
    """What a fusion pass matches: the components' torch ops, in order."""
    a, b, c = parts
    gm = make_fx(lambda x: c.impls["unfused"].impl_fn(x, 2.0, 1.0))(torch.randn(3))
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert targets == [a.torch_op, b.torch_op]
    gm = make_fx(lambda x: c(x, 2.0, 1.0))(torch.randn(3))
    assert [n.target for n in gm.graph.nodes if n.op == "call_function"] == [c.torch_op]


def test_composite_runs_on_fake_and_meta_tensors(parts: tuple[IrOp, IrOp, IrOp]) -> None:
    _, _, c = parts
    out = c(torch.empty(4, 2, device="meta"), 2.0, 1.0)
    assert out.shape == (4, 2) and out.device.type == "meta"
    torch.library.opcheck(c.torch_op, (torch.randn(3, 5), 2.0, 1.0))
    with c.set_priority(["unfused"]):
        torch.library.opcheck(c.torch_op, (torch.randn(3, 5), 2.0, 1.0))


def test_inplace_component_runs_functionally(isolated: dict[str, IrOp]) -> None:
    p = register_op(allow_inplace=True)(pair)

    def pair_inplace(x: Tensor, x_other: Tensor) -> tuple[Tensor, Tensor]:
        total = x + x_other
        x_other.sub_(x).neg_()
        x.copy_(total)
        return x, x_other

    p.register_impl("inplace", inplace=True)(pair_inplace)

    @register_op(composite_of=[p])
    def pair_sum(components: Components, x: Tensor, x_other: Tensor) -> Tensor:
        s, d = components.pair(x, x_other)
        return s * d  # type: ignore[no-any-return]

    x, y = torch.randn(4), torch.randn(4)
    x0, y0 = x.clone(), y.clone()
    with p.set_priority(["inplace"]), pair_sum.set_priority(["unfused"]):
        out = pair_sum(x, y)
    assert torch.equal(x, x0) and torch.equal(y, y0)
    torch.testing.assert_close(out, (x0 + y0) * (x0 - y0))


def test_composite_of_a_composite(parts: tuple[IrOp, IrOp, IrOp]) -> None:
    a, _, c = parts

    @register_op(composite_of=[c, a])
    def twice(components: Components, x: Tensor, factor: float, amount: float) -> Tensor:
        return components.scale(components.scale_then_shift(x, factor, amount), factor)  # type: ignore[no-any-return]

    x = torch.randn(3)
    assert torch.equal(twice(x, 2.0, 1.0), scale(shift(scale(x, 2.0), 1.0), 2.0))
    with twice.set_priority(["unfused"]), c.set_priority(["unfused"]), a.set_priority(["plusone"]):
        assert torch.equal(
            twice(x, 2.0, 1.0), scale_plus_one(shift(scale_plus_one(x, 2.0), 1.0), 2.0)
        )


# -- bad declarations -------------------------------------------------------------------------


def test_bad_composite_declarations(parts: tuple[IrOp, IrOp, IrOp]) -> None:
    a, b, _ = parts
    before = dict(IrOp.registry)

    def body(components: Components, x: Tensor) -> Tensor:
        return x

    with pytest.raises(ValueError, match="composite_of is empty"):
        register_op(name="c1", composite_of=[])(body)
    with pytest.raises(TypeError, match="composite_of lists 'scale', which is not an IR op"):
        register_op(name="c2", composite_of=["scale"])(body)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="composite_of must be a list of IR ops"):
        register_op(name="c3", composite_of=a)(body)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="composite_of lists 'scale' twice"):
        register_op(name="c4", composite_of=[a, b, a])(body)

    def no_components(x: Tensor) -> Tensor:
        return x

    def unannotated(components, x: Tensor) -> Tensor:  # type: ignore[no-untyped-def]
        return x

    for fn in (no_components, unannotated):
        with pytest.raises(ValueError, match="first parameter receives the components"):
            register_op(name="c5", composite_of=[a])(fn)

    def unresolvable(components: Components, x: Undefined) -> Tensor:  # type: ignore[name-defined]  # noqa: F821
        return x

    with pytest.raises(ValueError, match="annotations must resolve at registration"):
        register_op(name="c6", composite_of=[a])(unresolvable)
    assert IrOp.registry == before


def test_unknown_component_names_the_declared_ones(isolated: dict[str, IrOp]) -> None:
    a = register_op(scale)

    @register_op(composite_of=[a])
    def typo(components: Components, x: Tensor) -> Tensor:
        return components.scael(x, 2.0)  # type: ignore[no-any-return]

    with pytest.raises(AttributeError, match="'typo' has no component 'scael'; components: scale"):
        typo(torch.randn(2))
    assert repr(Components("typo", {"scale": scale})) == "Components('typo': scale)"


def test_unfused_is_reserved_on_composite_ops_too(parts: tuple[IrOp, IrOp, IrOp]) -> None:
    _, _, c = parts
    with pytest.raises(ValueError, match="provider name 'unfused' is reserved"):
        c.register_impl("unfused")(fused_scale_shift)
    c.register_impl("fused")(fused_scale_shift)  # fused providers have the op's signature

    def wrong(components: Components, x: Tensor, factor: float, amount: float) -> Tensor:
        return x

    with pytest.raises(ValueError, match="does not match the native schema"):
        c.register_impl("wrong")(wrong)


# -- priorities ------------------------------------------------------------------------------


def test_unfused_is_valid_only_for_composite_ops(parts: tuple[IrOp, IrOp, IrOp]) -> None:
    a, _, c = parts
    with c.set_priority(["unfused"]):
        assert c.get_priority() == ["unfused"]
    message = "op 'scale': provider 'unfused' is only valid for composite ops .* 'scale' is not one"
    with pytest.raises(ValueError, match=message):
        a.set_default(["unfused", "native"])
    with pytest.raises(ValueError, match=message):
        IrOpPriorityConfig(scale=["unfused"])
    with pytest.raises(ValueError, match=message):
        IrOpPriorityConfig.parse("scale=unfused,native")
    with pytest.raises(ValueError, match=message):
        explain(a, (torch.randn(2), 1.0), priority=["unfused"])
    assert a.get_priority() == []


def test_env_naming_unfused_for_a_plain_op(
    parts: tuple[IrOp, IrOp, IrOp], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _, c = parts
    monkeypatch.setenv("IR_OP_PRIORITY", "scale_then_shift=unfused;scale=unfused")
    with forced_platform("cpu"):
        assert c.get_priority() == ["unfused"]
        with pytest.raises(ValueError, match=r"only valid for composite ops.*\(from IR_OP_PRI"):
            a.get_priority()


def test_with_default_gives_composite_ops_unfused_before_native(
    parts: tuple[IrOp, IrOp, IrOp],
) -> None:
    config = IrOpPriorityConfig.with_default(["cuda", "native"], shift=["twice"])
    assert dict(config) == {
        "scale": ("cuda", "native"),
        "shift": ("twice",),
        "scale_then_shift": ("cuda", "unfused", "native"),
    }
    assert IrOpPriorityConfig.with_default(["cuda"])["scale_then_shift"] == ("cuda", "unfused")
    # placed by the caller: kept for composite ops, skipped for the others
    placed = IrOpPriorityConfig.with_default(["unfused", "cuda", "native"])
    assert placed["scale_then_shift"] == ("unfused", "cuda", "native")
    assert placed["scale"] == ("cuda", "native")
    only = IrOpPriorityConfig.with_default(["unfused"])
    assert dict(only) == {"scale_then_shift": ("unfused",)}


@pytest.mark.parametrize("platform", ["cuda", "rocm", "xpu"])
def test_gpu_defaults_use_components_until_a_fused_kernel_exists(
    parts: tuple[IrOp, IrOp, IrOp], platform: str
) -> None:
    a, _, c = parts
    with forced_platform(platform):
        # the kernel set has neither the components nor the fused op: unfused, all native
        assert c.get_priority() == ["unfused"]
        assert c.get_priority(compiling=True) == ["unfused"]
        # a kernel for one component: the composite follows it through unfused
        a.register_impl(platform)(scale_plus_one)
        assert c.get_priority() == ["unfused"]
        x = torch.randn(3)
        torch.testing.assert_close(c(x, 2.0, 1.0), shift(scale_plus_one(x, 2.0), 1.0))
        # a conditional fused kernel: it first, unfused for what it rejects
        c.register_impl(platform, supports_args=small_only)(fused_scale_shift)
        assert c.get_priority() == [platform, "unfused"]
        assert c.dispatch(torch.randn(200), 2.0, 1.0).provider == "unfused"
        assert c.dispatch(x, 2.0, 1.0).provider == platform
        assert c.get_priority(compiling=True) == ["unfused"]


def test_gpu_default_with_an_unconditional_fused_kernel(parts: tuple[IrOp, IrOp, IrOp]) -> None:
    _, _, c = parts
    c.register_impl("cuda")(fused_scale_shift)
    with forced_platform("cuda"):
        assert c.get_priority() == ["cuda"]
        decisions = explain(c, (torch.randn(3), 2.0, 1.0))
        assert [(d.provider, d.outcome) for d in decisions] == [
            ("cuda", "selected"),
            ("unfused", "not reached"),
            ("native", "not reached"),
        ]


def test_cpu_default_is_native_with_one_warning(
    parts: tuple[IrOp, IrOp, IrOp], caplog: pytest.LogCaptureFixture
) -> None:
    _, _, c = parts
    with forced_platform("cpu"), caplog.at_level(logging.WARNING, logger="ir_op"):
        assert c.get_priority() == []
        assert c.dispatch(torch.randn(2), 1.0, 1.0).provider == "native"
    assert any("no priority is set" in r.getMessage() for r in caplog.records)


def test_env_entry_for_a_composite_op_comes_first(
    parts: tuple[IrOp, IrOp, IrOp], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, c = parts
    monkeypatch.setenv("IR_OP_PRIORITY", "scale_then_shift=native")
    with forced_platform("cuda"):
        assert c.get_priority() == ["native"]


# -- identity -------------------------------------------------------------------------------


def test_uuids_follow_what_each_implementation_may_run(parts: tuple[IrOp, IrOp, IrOp]) -> None:
    a, _, c = parts
    native, unfused = c.impls["native"].uuid(), c.impls["unfused"].uuid()
    assert native != unfused and len(native) == len(unfused) == 64
    assert c.impls["native"].uuid() == native  # stable
    a.register_impl("another")(scale_plus_one)
    assert c.impls["unfused"].uuid() != unfused  # may now run the new provider
    assert c.impls["native"].uuid() == native  # runs native components only
    hashed = IrOpPriorityConfig(scale_then_shift=["unfused"]).compute_hash()
    a.register_impl("yet_another")(scale_plus_one)
    assert IrOpPriorityConfig(scale_then_shift=["unfused"]).compute_hash() != hashed
