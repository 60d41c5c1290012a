"""Lowering time of a 64-layer decoder graph, with and without the trace cache.

    python packages/ir-compile/benchmarks/lowering_cache.py [--layers 64] [--repeat 3]

The graph is what the post-grad passes see (``ir_compile.testing.ir_graph``: IR op nodes with
fake values), for a decoder whose layers each call ``fused_add_rms_norm`` twice,
``rotary_embedding`` and ``silu_and_mul`` (4 IR nodes a layer), around matmuls. It is lowered by
``IrLoweringPass`` with the trace cache (one trace per kind of node) and without it (one trace
per node), with static and with symbolic shapes. Each measurement lowers a freshly traced graph;
the best of ``--repeat`` runs is reported.
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

import torch
from torch import Tensor

from ir_compile.passes.lowering import IrLoweringPass
from ir_compile.priorities import CompilePriorities
from ir_compile.testing import ir_graph
from ir_op import ops
from ir_op.ops.rotary import rope_cos_sin_cache

HIDDEN, HEADS, HEAD_SIZE, FFN = 256, 4, 64, 512


WEIGHT_NAMES = ("norm1", "qkv", "out", "norm2", "gate_up", "down")


def make_weights(layers: int) -> list[Tensor]:
    """Every layer's weights, flat (graph inputs, as a compiled model's parameters are)."""
    g = torch.Generator().manual_seed(0)

    def w(*shape: int) -> Tensor:
        return (torch.randn(*shape, generator=g) / shape[-1] ** 0.5).to(torch.bfloat16)

    shapes = ((HIDDEN,), (3 * HIDDEN, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN,), (2 * FFN, HIDDEN))
    return [w(*shape) for _ in range(layers) for shape in (*shapes, (HIDDEN, FFN))]


def decoder(x: Tensor, positions: Tensor, cache: Tensor, *weights: Tensor) -> Tensor:
    residual = torch.zeros_like(x)
    per_layer = len(WEIGHT_NAMES)
    for i in range(0, len(weights), per_layer):
        layer = dict(zip(WEIGHT_NAMES, weights[i : i + per_layer], strict=True))
        h, residual = ops.fused_add_rms_norm(x, residual, layer["norm1"], 1e-6)
        q, k, v = (h @ layer["qkv"].t()).split(HIDDEN, dim=-1)
        q, k = ops.rotary_embedding(positions, q, k, HEAD_SIZE, cache, True)
        attn = (q * k).sum(-1, keepdim=True).softmax(0) * v  # a stand-in for attention
        h, residual = ops.fused_add_rms_norm(
            attn @ layer["out"].t(), residual, layer["norm2"], 1e-6
        )
        x = ops.silu_and_mul(h @ layer["gate_up"].t()) @ layer["down"].t()
    return x + residual


def lower_once(args: tuple[Any, ...], layers: int, dynamic: bool, cache: bool) -> tuple[float, Any]:
    gm = ir_graph(decoder, *args, *make_weights(layers), dynamic=dynamic)
    lowering = IrLoweringPass(CompilePriorities(), cache=cache)
    start = time.perf_counter()
    lowering(gm.graph)
    elapsed = time.perf_counter() - start
    assert not lowering.result.not_lowered
    return elapsed, lowering.result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()

    tokens = 16
    args = (
        torch.randn(tokens, HIDDEN, dtype=torch.bfloat16),
        torch.randint(0, 4096, (tokens,)),
        rope_cos_sin_cache(4096, HEAD_SIZE, dtype=torch.bfloat16),
    )
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{options.layers} layers, {4 * options.layers} IR nodes, best of {options.repeat}"
    )
    lower_once(args, 1, False, True)  # warm-up: imports, fake-tensor caches
    print("| shapes | trace cache | lowering time | traces | cache hits |")
    print("|---|---|---:|---:|---:|")
    for dynamic in (False, True):
        times = {}
        for cache in (True, False):
            runs = [lower_once(args, options.layers, dynamic, cache) for _ in range(options.repeat)]
            best, result = min(runs, key=lambda r: r[0])
            times[cache] = best
            print(
                f"| {'symbolic' if dynamic else 'static'} | {'on' if cache else 'off'} | "
                f"{best:.2f} s | {result.traces} | {result.cache_hits} |"
            )
        print(f"| | speedup | {times[False] / times[True]:.1f}x | | |")


if __name__ == "__main__":
    main()
