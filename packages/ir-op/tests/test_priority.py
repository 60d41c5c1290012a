"""Priority lists: setting, filtering, defaults, and what dispatch picks."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, register_op
from ir_op.testing import forced_platform


def scale(x: Tensor, factor: float, bias: Tensor | None = None) -> Tensor:
    out = x * factor
    return out if bias is None else out + bias


def scale_b(x: Tensor, factor: float, bias: Tensor | None = None) -> Tensor:
    return scale(x, factor, bias)


def floats_only(x: Tensor, factor: float, bias: Tensor | None = None) -> bool:
    return x.dtype == torch.float32


def no_bias(x: Tensor, factor: float, bias: Tensor | None = None) -> bool:
    return bias is None


@pytest.fixture
def op(isolated: dict[str, IrOp]) -> IrOp:
    op = register_op(scale)
    op.register_impl("conditional", supports_args=floats_only)(scale_b)
    op.register_impl("unconditional")(scale_b)
    op.register_impl("absent", supported=False, unsupported_reason="no device")(scale_b)
    op.register_impl("nobias", supports_args=no_bias)(scale_b)
    return op


def test_empty_priority_on_cpu_dispatches_native_with_one_warning(
    op: IrOp, caplog: pytest.LogCaptureFixture
) -> None:
    assert op.get_priority() == []
    x = torch.randn(3)
    with caplog.at_level(logging.WARNING, logger="ir_op"):
        assert op.dispatch(x, 2.0).provider == "native"
        assert op.dispatch(x, 2.0).provider == "native"
        op(x, 2.0)
    messages = [r.getMessage() for r in caplog.records if "no priority is set" in r.getMessage()]
    assert len(messages) == 1
    assert "'scale'" in messages[0]


def test_set_priority_stops_at_first_unconditional_impl(op: IrOp) -> None:
    with op.set_priority(["conditional", "unconditional", "native"]):
        assert op.get_priority() == ["conditional", "unconditional"]


def test_unsupported_providers_are_dropped(op: IrOp) -> None:
    with op.set_priority(["absent", "conditional", "native"]):
        assert op.get_priority() == ["conditional", "native"]


def test_native_is_appended_with_one_warning(op: IrOp, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ir_op"):
        with op.set_priority(["conditional"]):
            assert op.get_priority() == ["conditional", "native"]
        with op.set_priority(["nobias", "conditional"]):
            assert op.get_priority() == ["nobias", "conditional", "native"]
    warnings = [r.getMessage() for r in caplog.records if "add 'native'" in r.getMessage()]
    assert len(warnings) == 1


def test_explicit_native_does_not_warn(op: IrOp, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="ir_op"),
        op.set_priority(["conditional", "native"]),
    ):
        pass
    assert not caplog.records


def test_unknown_provider_lists_registered_ones_and_changes_nothing(op: IrOp) -> None:
    with op.set_priority(["unconditional"]):
        with (
            pytest.raises(
                ValueError,
                match="unknown provider 'cdua'; registered providers: native, conditional",
            ),
            op.set_priority(["cdua", "native"]),
        ):
            pass
        with pytest.raises(ValueError, match="unknown provider 'cdua'"):
            op.set_default(["cdua"])
        assert op.get_priority() == ["unconditional"]


def test_bad_priority_values(op: IrOp) -> None:
    with pytest.raises(TypeError, match=r"did you mean \['conditional', 'native'\]"):
        op.set_default("conditional,native")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="provider names are strings"):
        op.set_default(["native", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="listed twice"):
        op.set_default(["native", "native"])
    with pytest.raises(ValueError, match="provider 'unfused' is only valid for composite ops"):
        op.set_default(["unfused"])
    assert op.get_priority() == []


def test_set_priority_nests_and_restores(op: IrOp) -> None:
    op.set_default(["unconditional"])
    with op.set_priority(["conditional", "native"]):
        with op.set_priority(["nobias", "native"]):
            assert op.get_priority() == ["nobias", "native"]
        assert op.get_priority() == ["conditional", "native"]
    assert op.get_priority() == ["unconditional"]


def test_set_priority_restores_on_exception(op: IrOp) -> None:
    op.set_default(["unconditional"])
    with pytest.raises(KeyError), op.set_priority(["conditional", "native"]):
        raise KeyError("boom")
    assert op.get_priority() == ["unconditional"]


def test_dispatch_checks_arguments_at_run_time(op: IrOp) -> None:
    x32 = torch.randn(3)
    x64 = torch.randn(3, dtype=torch.float64)
    bias = torch.randn(3)
    with op.set_priority(["nobias", "conditional", "native"]):
        assert op.dispatch(x32, 2.0).provider == "nobias"
        assert op.dispatch(x32, 2.0, bias).provider == "conditional"
        assert op.dispatch(x64, 2.0, bias=bias.double()).provider == "native"
        assert op.dispatch(x=x64, factor=2.0).provider == "nobias"
        torch.testing.assert_close(op(x64, 2.0, bias.double()), x64 * 2 + bias.double())


def test_dispatch_with_keyword_arguments_and_defaults(op: IrOp) -> None:
    seen: list[object] = []

    def record(x: Tensor, factor: float, bias: Tensor | None = None) -> bool:
        seen.append(bias)
        return True

    op.register_impl("recording", supports_args=record)(scale_b)
    with op.set_priority(["recording", "native"]):
        op.dispatch(torch.randn(2), factor=1.0)
    assert seen == [None]


def test_defaults_from_env_then_platform(op: IrOp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IR_OP_PRIORITY", "scale=nobias,native")
    with forced_platform("cpu"):
        assert op.get_priority() == ["nobias", "native"]
        assert op.get_priority(compiling=True) == ["nobias", "native"]
    monkeypatch.setenv("IR_OP_PRIORITY", "other=native")
    with forced_platform("cpu"):
        assert op.get_priority() == []


def test_gpu_platform_defaults_skip_providers_the_op_lacks(isolated: dict[str, IrOp]) -> None:
    op = register_op(scale)
    with forced_platform("cuda") as platform:
        assert platform.emulated == (not torch.cuda.is_available())
        # No "cuda" provider registered: the default falls back to native, silently.
        assert op.get_priority() == ["native"]
        assert op.get_priority(compiling=True) == ["native"]
        op.register_impl("cuda")(scale_b)
        assert op.get_priority() == ["cuda"]
        assert op.get_priority(compiling=True) == ["native"]


def test_user_env_entries_come_before_platform_defaults(
    op: IrOp, monkeypatch: pytest.MonkeyPatch
) -> None:
    op.register_impl("rocm", supports_args=floats_only)(scale_b)
    monkeypatch.setenv("IR_OP_PRIORITY", "scale=nobias")
    with forced_platform("rocm"):
        assert op.get_priority() == ["nobias", "rocm", "native"]
        assert op.get_priority(compiling=True) == ["nobias", "native"]


def test_env_naming_an_unknown_provider_fails_on_first_use(
    op: IrOp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IR_OP_PRIORITY", "scale=nope,native")
    with (
        forced_platform("cpu"),
        pytest.raises(ValueError, match=r"unknown provider 'nope'.*\(from IR_OP_PRIORITY\)"),
    ):
        op.dispatch(torch.randn(2), 1.0)


def test_malformed_env_fails_with_the_variable_name(
    op: IrOp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IR_OP_PRIORITY", "scale:native")
    with (
        forced_platform("cpu"),
        pytest.raises(ValueError, match="IR_OP_PRIORITY: entry 'scale:native'"),
    ):
        op.get_priority()


def test_user_priority_wins_over_compile_defaults(op: IrOp) -> None:
    with forced_platform("cuda"), op.set_priority(["unconditional"]):
        assert op.get_priority(compiling=True) == ["unconditional"]


def test_registering_after_defaults_recomputes_them(isolated: dict[str, IrOp]) -> None:
    op = register_op(scale)
    with forced_platform("xpu"):
        assert op.get_priority() == ["native"]
        op.register_impl("xpu")(scale_b)
        assert op.get_priority() == ["xpu"]


def test_registering_after_user_priority_warns(op: IrOp, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ir_op"), op.set_priority(["native"]):
        op.register_impl("late")(scale_b)
        assert op.get_priority() == ["native"]
    assert any("registered after a priority was set" in r.getMessage() for r in caplog.records)


def test_no_warning_for_empty_priority_while_compiling(
    isolated: dict[str, IrOp], caplog: pytest.LogCaptureFixture
) -> None:
    from ir_op import enable_torch_wrap

    op = register_op(scale)
    with caplog.at_level(logging.WARNING, logger="ir_op"), enable_torch_wrap(False):
        compiled = torch.compile(lambda x: op(x, 3.0), backend="eager", fullgraph=True)
        torch.testing.assert_close(compiled(torch.ones(2)), torch.full((2,), 3.0))
    assert not [r for r in caplog.records if "no priority is set" in r.getMessage()]
