"""The proof: with LayerName, identical layers compile once; with strings, once per layer.

Layers are ``torch.compiler.nested_compile_region`` s calling a custom op by layer name
(``ir_layername.testing``). ``AotLayerCounter`` counts the layer bodies that AOTAutograd traces
for compilation: a shared subgraph counts once, an inlined or distinct one per layer. The same
count through Inductor, with its fix for hoisted opaque arguments, is in ir-compile's tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ir_layername import USE_LAYERNAME, LayerName, encode_layer_name
from ir_layername.testing import (
    LAYER_SCALES,
    AotLayerCounter,
    DecoderStack,
    scale_by_layer,
    scale_by_layer_str,
)


@pytest.fixture(autouse=True)
def fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compile_and_count(model: DecoderStack, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    counter = AotLayerCounter()
    out = torch.compile(model, backend=counter, fullgraph=True)(x)
    assert len(counter.layer_bodies) == 1, counter.layer_bodies  # one graph, no graph break
    return out, counter.layer_bodies[0]


def inputs(num_tokens: int = 7, hidden_size: int = 32) -> torch.Tensor:
    return torch.randn(num_tokens, hidden_size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("num_layers", [8, 32])
def test_layer_names_share_one_compiled_layer(num_layers: int) -> None:
    model = DecoderStack(num_layers, plain_strings=False)
    x = inputs()
    expected = model(x)
    out, bodies = compile_and_count(model, x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    if USE_LAYERNAME:
        assert 1 <= bodies <= 2
    else:  # torch 2.10, or the env switch: names are strings
        assert bodies == num_layers


@pytest.mark.parametrize("num_layers", [8, 32])
def test_strings_compile_every_layer(num_layers: int) -> None:
    model = DecoderStack(num_layers, plain_strings=True)
    x = inputs()
    expected = model(x)
    out, bodies = compile_and_count(model, x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert bodies == num_layers


def test_layers_really_differ() -> None:
    """Each layer's op reads its own state: a shared graph that baked one name would be wrong."""
    model = DecoderStack(2, plain_strings=False)
    x = inputs()
    first, second = (layer.layer_name for layer in model.layers)
    assert scale_by_layer(x, first).ne(scale_by_layer(x, second)).any()


def test_compiled_model_follows_new_layer_state() -> None:
    """The compiled layer reads state by name at run time, for every layer."""
    model = DecoderStack(4, plain_strings=False)
    x = inputs()
    compiled = torch.compile(model, backend=AotLayerCounter(), fullgraph=True)
    compiled(x)
    LAYER_SCALES[model.layer_names[3]].mul_(-2.0)
    torch.testing.assert_close(compiled(x), model(x), rtol=0, atol=0)


def test_layer_state_is_forgotten_with_the_model() -> None:
    model = DecoderStack(3, plain_strings=False)
    names = list(model.layer_names)
    assert all(name in LAYER_SCALES for name in names)
    del model
    import gc

    gc.collect()
    assert not any(name in LAYER_SCALES for name in names)


def test_decoder_stack_rejects_bad_layer_counts() -> None:
    with pytest.raises(ValueError, match="num_layers must be in"):
        DecoderStack(0, plain_strings=False)


def test_ops_pass_opcheck() -> None:
    model = DecoderStack(1, plain_strings=False)
    x = inputs()
    torch.library.opcheck(scale_by_layer, (x, encode_layer_name(model.layer_names[0])))
    torch.library.opcheck(scale_by_layer_str, (x, model.layer_names[0]))
    strided = torch.randn(32, 9).t()
    torch.library.opcheck(scale_by_layer, (strided, encode_layer_name(model.layer_names[0])))


def test_ops_reject_unknown_layers_and_bad_shapes() -> None:
    model = DecoderStack(1, plain_strings=False, hidden_size=16)
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        scale_by_layer_str(torch.randn(2, 16), "nope")
    with pytest.raises(ValueError, match="does not fit"):
        scale_by_layer_str(torch.randn(2, 15), model.layer_names[0])


@pytest.mark.skipif(not USE_LAYERNAME, reason="ops take str here")
def test_op_schema_takes_the_opaque_type() -> None:
    schema = str(torch.ops.ir_layername_testing.scale_by_layer.default._schema)
    assert "str layer_name" not in schema
    assert LayerName is type(encode_layer_name("x"))
