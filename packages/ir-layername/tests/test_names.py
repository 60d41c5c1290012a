"""encode_layer_name / resolve_layer_name / LayerNameType agree with USE_LAYERNAME."""

from __future__ import annotations

import pytest

import ir_layername
from ir_layername import (
    HAS_OPAQUE_TYPE,
    USE_LAYERNAME,
    LayerName,
    LayerNameType,
    encode_layer_name,
    resolve_layer_name,
)
from ir_layername.names import ENV_VAR, _env_allows_layername


def test_use_layername_needs_the_feature() -> None:
    assert not (USE_LAYERNAME and not HAS_OPAQUE_TYPE)


def test_layer_name_type_is_what_encode_returns() -> None:
    encoded = encode_layer_name("model.layers.0.attn")
    assert type(encoded) is LayerNameType
    assert LayerNameType is (LayerName if USE_LAYERNAME else str)
    assert resolve_layer_name(encoded) == "model.layers.0.attn"


@pytest.mark.parametrize("bad", [None, 0, LayerName("x"), b"x"])
def test_encode_rejects_non_str(bad: object) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        encode_layer_name(bad)  # type: ignore[arg-type]


def test_encode_rejects_empty() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        encode_layer_name("")


def test_resolve_str_and_layer_name() -> None:
    assert resolve_layer_name("layers.1") == "layers.1"
    assert resolve_layer_name(LayerName("layers.1")) == "layers.1"


@pytest.mark.parametrize("bad", [None, 1, b"layers.1", ["layers.1"]])
def test_resolve_rejects_other_types(bad: object) -> None:
    with pytest.raises(TypeError, match="str or a LayerName"):
        resolve_layer_name(bad)  # type: ignore[arg-type]


@pytest.mark.skipif(not HAS_OPAQUE_TYPE, reason="torch makes no fake objects of LayerName")
def test_resolve_unwraps_the_fake_object_seen_while_compiling() -> None:
    from torch._library.fake_class_registry import FakeScriptObject, maybe_to_fake_obj
    from torch._subclasses.fake_tensor import FakeTensorMode

    fake = maybe_to_fake_obj(FakeTensorMode(), LayerName("model.layers.5.attn"))
    assert type(fake) is FakeScriptObject
    assert resolve_layer_name(fake) == "model.layers.5.attn"  # type: ignore[arg-type]


def test_resolve_rejects_fake_objects_of_other_types() -> None:
    from torch._library.fake_class_registry import FakeScriptObject

    fake = FakeScriptObject(object(), "some.Other", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str or a LayerName"):
        resolve_layer_name(fake)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "allowed"),
    [
        (None, True),
        ("", True),
        ("1", True),
        (" TRUE ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("Off", False),
        ("no", False),
    ],
)
def test_env_switch_values(monkeypatch: pytest.MonkeyPatch, raw: str | None, allowed: bool) -> None:
    if raw is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, raw)
    assert _env_allows_layername() is allowed


@pytest.mark.parametrize("raw", ["2", "maybe", "O"])
def test_env_switch_rejects_unknown_values(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(ENV_VAR, raw)
    with pytest.raises(ValueError, match=f"{ENV_VAR}={raw!r}.*'0'"):
        _env_allows_layername()


def test_public_names() -> None:
    for name in ir_layername.__all__:
        assert hasattr(ir_layername, name), name
