"""LayerName is an immutable, hashable, weak-referenceable value that FX can rebuild."""

import copy
import pickle
import weakref

import pytest

from ir_layername import LayerName


def test_value_and_repr() -> None:
    name = LayerName("model.layers.3.self_attn")
    assert name.value == "model.layers.3.self_attn"
    assert repr(name) == "LayerName('model.layers.3.self_attn')"


def test_equality_needs_same_type_and_value() -> None:
    assert LayerName("a") == LayerName("a")
    assert LayerName("a") != LayerName("b")
    assert LayerName("a") != "a"
    text = "a"
    assert text != LayerName("a")

    class Other:
        value = "a"

    assert LayerName("a") != Other()


def test_hash_follows_equality() -> None:
    assert hash(LayerName("a")) == hash(LayerName("a"))
    assert len({LayerName("a"), LayerName("a"), LayerName("b")}) == 2
    assert {LayerName("a"): 1}[LayerName("a")] == 1


def test_fx_repr_rebuilds_an_equal_value() -> None:
    name = LayerName("layers.0.attn'\"\\ ü")
    expression, names = name.__fx_repr__()
    assert names == {"LayerName": LayerName}
    assert eval(expression, {"__builtins__": {}}, dict(names)) == name


def test_is_immutable() -> None:
    name = LayerName("a")
    with pytest.raises(AttributeError, match="immutable"):
        name._value = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        name.other = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="immutable"):
        del name._value
    with pytest.raises(AttributeError):
        name.value = "b"  # type: ignore[misc]
    assert name.value == "a"


def test_is_weak_referenceable() -> None:
    name = LayerName("a")
    ref = weakref.ref(name)
    assert ref() is name


def test_survives_pickle_and_copy() -> None:
    name = LayerName("layers.7.mlp")
    for clone in (pickle.loads(pickle.dumps(name)), copy.copy(name), copy.deepcopy(name)):
        assert type(clone) is LayerName
        assert clone == name


@pytest.mark.parametrize("bad", [None, 3, b"layers.0", ["layers.0"]])
def test_rejects_non_str(bad: object) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        LayerName(bad)  # type: ignore[arg-type]


def test_rejects_empty() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        LayerName("")
