"""IR ops next to a custom op taking a ``LayerName``, in nested compile regions, through
``ir_compile.backend``: outputs match eager, and identical layers compile once where torch
hoists ``LayerName`` (on torch 2.10 names are strings: every layer compiles, and it still works).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import ir_compile
import ir_layername
from ir_layername.testing import (
    LAYER_SCALES,
    MAX_LAYERS,
    inductor_layer_lowerings,
    scale_by_layer,
)
from ir_op import ops


def layer_region() -> Any:
    region: Any = torch.compiler.nested_compile_region
    if "max_reuse_entries" in inspect.signature(region).parameters:
        return region(max_reuse_entries=MAX_LAYERS)
    return region


class Layer(nn.Module):
    """Residual add and norm (IR op), per-layer state by name (custom op), gated activation."""

    def __init__(self, hidden: int, name: str, generator: torch.Generator) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(hidden, generator=generator) + 0.5)
        self.requires_grad_(False)
        self.layer_name = ir_layername.encode_layer_name(name)
        LAYER_SCALES[name] = torch.rand(hidden, generator=generator) + 0.5

    @layer_region()
    def forward(self, x: Tensor, residual: Tensor) -> tuple[Tensor, Tensor]:
        h, residual = ops.fused_add_rms_norm(x, residual, self.weight, 1e-6)
        h = scale_by_layer(h, self.layer_name)
        return ops.silu_and_mul(torch.cat([h, h * 0.5], dim=-1)), residual


class Stack(nn.Module):
    def __init__(self, num_layers: int, hidden: int = 32) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.names = [f"ir_compile_stack.layers.{i}" for i in range(num_layers)]
        self.layers = nn.ModuleList(Layer(hidden, name, generator) for name in self.names)

    def forward(self, x: Tensor) -> Tensor:
        residual = torch.zeros_like(x)
        for layer in self.layers:
            x, residual = layer(x, residual)
        return x + residual


@pytest.fixture
def stack() -> Any:
    model = Stack(32)
    yield model
    for name in model.names:
        LAYER_SCALES.pop(name, None)


def test_layers_with_ir_ops_and_layer_names_compile_once(stack: Stack, compiling: None) -> None:
    x = torch.randn(5, 32, generator=torch.Generator().manual_seed(1))
    expected = stack(x)
    backend = ir_compile.backend()
    with inductor_layer_lowerings() as lowered:
        got = torch.compile(stack, backend=backend, fullgraph=True)(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert set(backend.report.selected) == {"fused_add_rms_norm", "silu_and_mul"}
    assert backend.report.not_lowered == {}
    if ir_layername.USE_LAYERNAME:
        assert 1 <= len(lowered) <= 2, lowered
    else:  # names are strings: each layer is its own subgraph
        assert len(lowered) == len(stack.names)
