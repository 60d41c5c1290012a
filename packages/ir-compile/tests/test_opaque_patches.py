"""Inductor fixes for hoisted opaque arguments (``ir_compile.inductor_patches.opaque``).

On every torch: the probes say which fix the installed Inductor needs; where stock Inductor
fails, a test shows the failure without the fix and success with it; where it does not, the
fix stays uninstalled and compiling works as is.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

import ir_layername
from ir_compile.inductor_patches import install_opaque_patches, opaque
from ir_layername import HAS_OPAQUE_TYPE, USE_LAYERNAME, LayerName, LayerNameType
from ir_layername.testing import DecoderStack, inductor_caches_off, inductor_layer_lowerings

needs_hoisting = pytest.mark.skipif(
    not USE_LAYERNAME, reason="LayerName is not hoisted here, so neither failure can happen"
)


def _state() -> tuple[object, object]:
    from torch._inductor import fx_utils, lowering

    return getattr(fx_utils, "_is_fake_tensor_same", None), lowering.constrain_to_fx_strides


@pytest.fixture
def stock_inductor() -> Iterator[None]:
    """Inductor as shipped (caches off) inside the test; what was installed is restored after."""
    was = opaque.status()
    opaque.uninstall()
    torch._dynamo.reset()
    try:
        with inductor_caches_off():
            yield
    finally:
        torch._dynamo.reset()
        if was.consistent_subgraph_args_installed or was.fx_strides_installed:
            opaque.install()


@pytest.fixture
def patched_inductor() -> Iterator[None]:
    was = opaque.status()
    opaque.install()
    torch._dynamo.reset()
    try:
        with inductor_caches_off():
            yield
    finally:
        torch._dynamo.reset()
        if not (was.consistent_subgraph_args_installed or was.fx_strides_installed):
            opaque.uninstall()


# ---------------------------------------------------------------------------------------------
# Probes, install, uninstall


def test_install_is_idempotent_and_uninstall_restores_stock(stock_inductor: None) -> None:
    stock = _state()
    first = install_opaque_patches()
    patched = _state()
    assert install_opaque_patches() == first
    assert _state() == patched
    assert first.consistent_subgraph_args_installed == first.consistent_subgraph_args_needed
    assert first.fx_strides_installed == first.fx_strides_needed
    assert (patched[0] is stock[0]) == (not first.consistent_subgraph_args_needed)
    assert (patched[1] is stock[1]) == (not first.fx_strides_needed)
    opaque.uninstall()
    opaque.uninstall()
    assert _state() == stock
    after = opaque.status()
    assert not after.consistent_subgraph_args_installed
    assert not after.fx_strides_installed


def test_patched_functions_are_rebound_everywhere_inductor_reads_them(
    patched_inductor: None,
) -> None:
    from torch._inductor import graph, lowering

    assert graph.constrain_to_fx_strides is lowering.constrain_to_fx_strides
    if opaque.status().fx_strides_installed:
        assert lowering.tag_to_layout_constraint(torch.Tag.needs_fixed_stride_order) is (
            lowering.constrain_to_fx_strides
        )


def test_nothing_is_needed_where_layer_names_are_not_hoisted() -> None:
    if HAS_OPAQUE_TYPE:
        pytest.skip("this torch hoists LayerName")
    status = opaque.status()
    assert not status.consistent_subgraph_args_needed
    assert not status.fx_strides_needed


@pytest.mark.skipif(not HAS_OPAQUE_TYPE, reason="torch makes no fake objects of LayerName")
def test_fake_opaque_objects_of_one_type_are_consistent() -> None:
    from torch._library.fake_class_registry import FakeScriptObject, maybe_to_fake_obj
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode()
    first = maybe_to_fake_obj(mode, LayerName("layers.0"))
    second = maybe_to_fake_obj(mode, LayerName("layers.1"))
    assert opaque.fake_opaque_objects_consistent(first, second)
    assert not opaque.fake_opaque_objects_consistent(first, LayerName("layers.1"))
    assert not opaque.fake_opaque_objects_consistent(LayerName("layers.0"), LayerName("layers.1"))
    unregistered = FakeScriptObject(object(), "some.Other", object())  # type: ignore[arg-type]
    assert not opaque.fake_opaque_objects_consistent(first, unregistered)
    assert not opaque.fake_opaque_objects_consistent(unregistered, unregistered)


# ---------------------------------------------------------------------------------------------
# Consistent subgraph args: per-layer LayerNames in a nested compile region


def inputs() -> Tensor:
    return torch.randn(7, 32, generator=torch.Generator().manual_seed(3))


@needs_hoisting
def test_stock_inductor_on_per_layer_layer_names(stock_inductor: None) -> None:
    model = DecoderStack(3, plain_strings=False)
    x = inputs()
    compiled = torch.compile(model, fullgraph=True)
    if opaque.status().consistent_subgraph_args_needed:
        with pytest.raises(Exception, match="subgraph args must have consistent values"):
            compiled(x)
    else:
        with inductor_layer_lowerings() as lowered:
            out = compiled(x)
        torch.testing.assert_close(out, model(x))
        assert len(lowered) == 1


@needs_hoisting
@pytest.mark.parametrize("num_layers", [8, 32])
def test_patched_inductor_compiles_one_layer(patched_inductor: None, num_layers: int) -> None:
    model = DecoderStack(num_layers, plain_strings=False)
    x = inputs()
    with inductor_layer_lowerings() as lowered:
        out = torch.compile(model, fullgraph=True)(x)
    torch.testing.assert_close(out, model(x))
    assert 1 <= len(lowered) <= 2, lowered


def test_patched_inductor_compiles_every_string_layer(patched_inductor: None) -> None:
    model = DecoderStack(8, plain_strings=True)
    x = inputs()
    with inductor_layer_lowerings() as lowered:
        out = torch.compile(model, fullgraph=True)(x)
    torch.testing.assert_close(out, model(x))
    assert len(lowered) == 8


# ---------------------------------------------------------------------------------------------
# constrain_to_fx_strides: an op with a fixed stride order that takes a LayerName

SEEN_STRIDES: list[tuple[int, ...]] = []


@torch.library.custom_op(
    "ir_compile_test_opaque::fixed_order_scale",
    mutates_args=(),
    tags=(torch.Tag.needs_fixed_stride_order,),
)
def fixed_order_scale(x: Tensor, layer_name: LayerNameType) -> Tensor:
    """Records the strides it is called with; scales by the name's length."""
    SEEN_STRIDES.append(tuple(x.stride()))
    return x * len(ir_layername.resolve_layer_name(layer_name))


@fixed_order_scale.register_fake
def _fixed_order_scale_fake(x: Tensor, layer_name: LayerNameType) -> Tensor:
    return torch.empty_like(x)


def transposed_then_scaled(x: Tensor, y: Tensor, layer_name: LayerNameType) -> Tensor:
    """Eager lays ``x.t() + y`` out like ``x.t()``; left free, Inductor would make it row-major."""
    return fixed_order_scale(x.t() + y, layer_name) + 1.0


@needs_hoisting
def test_stock_constrain_to_fx_strides_on_a_layer_name(stock_inductor: None) -> None:
    x, y = torch.randn(6, 10), torch.randn(10, 6)
    name = ir_layername.encode_layer_name("layers.0.attn")
    compiled = torch.compile(transposed_then_scaled, fullgraph=True)
    if opaque.status().fx_strides_needed:
        with pytest.raises(Exception, match="stride"):
            compiled(x, y, name)
    else:
        torch.testing.assert_close(compiled(x, y, name), transposed_then_scaled(x, y, name))


def test_patched_constrain_to_fx_strides_keeps_tensor_strides(patched_inductor: None) -> None:
    """The op sees eager's strides, computes eager's result, for every layer name."""
    x, y = torch.randn(6, 10), torch.randn(10, 6)
    compiled = torch.compile(transposed_then_scaled, fullgraph=True)
    for layer in ("layers.0.attn", "layers.17.attn"):
        name = ir_layername.encode_layer_name(layer)
        SEEN_STRIDES.clear()
        expected = transposed_then_scaled(x, y, name)
        eager_strides = list(SEEN_STRIDES)
        SEEN_STRIDES.clear()
        torch.testing.assert_close(compiled(x, y, name), expected)
        assert eager_strides == SEEN_STRIDES
    assert eager_strides == [(1, 10)]  # eager keeps the transposed layout
