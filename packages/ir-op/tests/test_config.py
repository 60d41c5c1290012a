"""IrOpPriorityConfig: building, parsing, applying, hashing."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from ir_op import IrOp, IrOpPriorityConfig, ops, register_op


def scale(x: Tensor, factor: float) -> Tensor:
    return x * factor


def scale_b(x: Tensor, factor: float) -> Tensor:
    return x * factor


def shift(x: Tensor, amount: float) -> Tensor:
    return x + amount


@pytest.fixture
def two_ops(isolated: dict[str, IrOp]) -> tuple[IrOp, IrOp]:
    a = register_op(scale)
    a.register_impl("fast")(scale_b)
    b = register_op(shift)
    return a, b


def test_keywords_lists_and_comma_strings(two_ops: tuple[IrOp, IrOp]) -> None:
    config = IrOpPriorityConfig(scale=["fast", "native"], shift="native")
    assert dict(config) == {"scale": ("fast", "native"), "shift": ("native",)}
    assert config["scale"] == ("fast", "native")
    assert len(config) == 2 and list(config) == ["scale", "shift"]
    assert repr(config) == "IrOpPriorityConfig(scale=['fast', 'native'], shift=['native'])"
    assert str(config) == "scale=fast,native;shift=native"


def test_from_dict_parse_and_env_agree(
    two_ops: tuple[IrOp, IrOp], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = {"scale": ("fast", "native"), "shift": ("native",)}
    assert (
        dict(IrOpPriorityConfig.from_dict({"scale": ["fast", "native"], "shift": "native"}))
        == expected
    )
    assert dict(IrOpPriorityConfig.parse(" scale = fast , native ; shift=native ;")) == expected
    assert (
        dict(IrOpPriorityConfig.parse('{"scale": ["fast", "native"], "shift": "native"}'))
        == expected
    )
    monkeypatch.setenv("IR_OP_PRIORITY", "scale=fast,native;shift=native")
    assert dict(IrOpPriorityConfig.from_env()) == expected
    monkeypatch.delenv("IR_OP_PRIORITY")
    assert dict(IrOpPriorityConfig.from_env()) == {}
    assert dict(IrOpPriorityConfig.parse("")) == {}


def test_with_default_covers_every_registered_op(two_ops: tuple[IrOp, IrOp]) -> None:
    config = IrOpPriorityConfig.with_default(["native"], scale="fast,native")
    assert dict(config) == {"scale": ("fast", "native"), "shift": ("native",)}


def test_with_default_skips_providers_an_op_lacks_as_platform_defaults_do(
    two_ops: tuple[IrOp, IrOp],
) -> None:
    """``scale`` has ``fast``, ``shift`` has nothing but native: the shared default applies to
    each with what it has, and an op left with nothing keeps its priority."""
    a, b = two_ops
    config = IrOpPriorityConfig.with_default(["fast", "native"])
    assert dict(config) == {"scale": ("fast", "native"), "shift": ("fast", "native")}
    config.set_default()
    assert a.get_priority() == ["fast"] and b.get_priority() == ["native"]
    assert config.compute_hash() == (
        IrOpPriorityConfig(scale=["fast", "native"], shift=["native"]).compute_hash()
    )
    with IrOpPriorityConfig.with_default(["native"]).set_priority():
        assert a.get_priority() == ["native"]
    assert a.get_priority() == ["fast"]
    b.set_default(["native"])
    IrOpPriorityConfig.with_default(["fast"]).set_default()  # shift has no fast: left as it was
    assert b.get_priority() == ["native"] and b._priority_from_user


def test_with_default_keyword_entries_still_need_their_providers(
    two_ops: tuple[IrOp, IrOp],
) -> None:
    a, b = two_ops
    with pytest.raises(ValueError, match="op 'shift': unknown provider 'fast'"):
        IrOpPriorityConfig.with_default(["native"], shift=["fast", "native"]).set_default()
    assert a.get_priority() == [] and b.get_priority() == []


def test_unknown_op_names_get_close_matches(two_ops: tuple[IrOp, IrOp]) -> None:
    with pytest.raises(
        ValueError, match="unknown op 'scael' in priority config; did you mean 'scale'"
    ):
        IrOpPriorityConfig(scael=["native"])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: IrOpPriorityConfig(nope=["native"]),
            "unknown op 'nope' in priority config; registered ops: scale, shift",
        ),
        (lambda: IrOpPriorityConfig.parse("nope=native"), "unknown op 'nope'"),
        (lambda: IrOpPriorityConfig.parse("scale"), "entry 'scale' is not of the form op=provider"),
        (lambda: IrOpPriorityConfig.parse("=native"), "entry '=native' is not of the form"),
        (lambda: IrOpPriorityConfig.parse("scale="), "priority for op 'scale' is empty"),
        (lambda: IrOpPriorityConfig.parse("scale=a;scale=b"), "names op 'scale' twice"),
        (lambda: IrOpPriorityConfig.parse("scale=Fast"), "provider .* name 'Fast' is invalid"),
        (lambda: IrOpPriorityConfig.parse("scale=fast,fast"), "lists provider 'fast' twice"),
        (lambda: IrOpPriorityConfig.parse("{bad json"), "is not valid JSON"),
        (lambda: IrOpPriorityConfig.parse("[1, 2]"), "entry '\\[1,2\\]' is not of the form"),
        (lambda: IrOpPriorityConfig.parse('["scale"]'), "is not of the form"),
        (lambda: IrOpPriorityConfig(scale=[]), "priority for op 'scale' is empty"),
        (lambda: IrOpPriorityConfig.with_default([]), "is empty"),
    ],
)
def test_bad_configs(two_ops: tuple[IrOp, IrOp], build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_bad_value_types(two_ops: tuple[IrOp, IrOp]) -> None:
    with pytest.raises(TypeError, match="must be a list of provider names"):
        IrOpPriorityConfig(scale=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a mapping"):
        IrOpPriorityConfig.from_dict([("scale", "native")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a string"):
        IrOpPriorityConfig.parse(None)  # type: ignore[arg-type]


def test_set_priority_applies_and_restores_all(two_ops: tuple[IrOp, IrOp]) -> None:
    a, b = two_ops
    config = IrOpPriorityConfig(scale=["fast"], shift=["native"])
    with config.set_priority():
        assert a.get_priority() == ["fast"] and b.get_priority() == ["native"]
    assert a.get_priority() == [] and b.get_priority() == []
    with pytest.raises(RuntimeError), config.set_priority():
        raise RuntimeError("boom")
    assert a.get_priority() == []


def test_set_default_is_all_or_nothing(two_ops: tuple[IrOp, IrOp]) -> None:
    a, b = two_ops
    with pytest.raises(ValueError, match="unknown provider 'cuda'"):
        IrOpPriorityConfig(scale=["fast"], shift=["cuda"]).set_default()
    assert a.get_priority() == [] and b.get_priority() == []
    with (
        pytest.raises(ValueError, match="unknown provider 'cuda'"),
        IrOpPriorityConfig(scale=["fast"], shift=["cuda"]).set_priority(),
    ):
        pass
    assert a.get_priority() == []
    IrOpPriorityConfig(scale=["fast"]).set_default()
    assert a.get_priority() == ["fast"] and b.get_priority() == []


def test_compute_hash_changes_with_entries(two_ops: tuple[IrOp, IrOp]) -> None:
    h1 = IrOpPriorityConfig(scale=["fast", "native"]).compute_hash()
    assert h1 == IrOpPriorityConfig(scale="fast,native").compute_hash()
    assert h1 != IrOpPriorityConfig(scale=["native", "fast"]).compute_hash()
    assert h1 != IrOpPriorityConfig(scale=["fast", "native"], shift=["native"]).compute_hash()
    with pytest.raises(ValueError, match="unknown provider 'nope'"):
        IrOpPriorityConfig(scale=["nope"]).compute_hash()


def test_compute_hash_is_stable_across_processes() -> None:
    config = IrOpPriorityConfig(rms_norm=["native"], fused_add_rms_norm=["native"])
    code = (
        "from ir_op import IrOpPriorityConfig as C; "
        "print(C(rms_norm=['native'], fused_add_rms_norm=['native']).compute_hash())"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"IR_OP_DISABLE_PLUGINS": "1", "PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1] == config.compute_hash()


def test_real_ops_accept_a_config() -> None:
    config = IrOpPriorityConfig(rms_norm=["native"])
    with config.set_priority():
        assert ops.rms_norm.get_priority() == ["native"]
        x = torch.randn(2, 8)
        torch.testing.assert_close(
            ops.rms_norm(x, None, 1e-6), ops.rms_norm.native_fn(x, None, 1e-6)
        )


_names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


@given(st.lists(_names, min_size=1, max_size=4, unique=True))
def test_text_form_round_trips(providers: list[str]) -> None:
    with_ops = IrOpPriorityConfig(rms_norm=providers, fused_add_rms_norm=providers[::-1])
    assert IrOpPriorityConfig.parse(str(with_ops)) == with_ops
