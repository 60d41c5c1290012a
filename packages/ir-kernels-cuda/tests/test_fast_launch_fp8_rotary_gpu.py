"""On an NVIDIA GPU: the gated-activation, fp8 and rotary providers launch through the fast path
with Triton's results while shapes, dtypes and strides change, and a decode step of them
(in-place rotary included) replays from a CUDA graph as eager computes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from ir_kernels_cuda import activation, composite, quant, rotary
from ir_kernels_cuda._support import PROVIDER
from ir_op import enable_torch_wrap, ops
from ir_op.ops.rotary import rope_cos_sin_cache
from ir_op.testing import preserved_priorities
from ir_triton import KernelLauncher, fast_launch

pytestmark = pytest.mark.gpu

LAUNCHERS: list[KernelLauncher] = [
    launcher
    for providers in (activation.ACTIVATION, composite.SILU_AND_MUL_QUANT, composite.NORM_QUANT,
                      quant.STATIC_QUANT, quant.DYNAMIC_QUANT, rotary.ROTARY)
    for name, launcher in vars(providers).items()
    if name.endswith("launcher")
]  # fmt: skip
OPS = [
    ops.silu_and_mul,
    ops.gelu_and_mul,
    ops.silu_and_mul_static_fp8_quant,
    ops.static_scaled_fp8_quant,
    ops.dynamic_scaled_fp8_quant,
    ops.rms_norm_static_fp8_quant,
    ops.fused_add_rms_norm_static_fp8_quant,
    ops.rotary_embedding,
]
SHAPES = [(1, 4096), (7, 768), (64, 5120), (3, 12288), (33, 128)]
DTYPES = [torch.bfloat16, torch.float16, torch.float32]


@pytest.fixture(autouse=True)
def _cuda_first() -> Iterator[None]:
    with preserved_priorities(), enable_torch_wrap(False):
        for op in OPS:
            op.set_default([PROVIDER])
        yield


def _slow_launches() -> int:
    return sum(launcher.slow_launches for launcher in LAUNCHERS)


def _tensor(rows: int, cols: int, dtype: torch.dtype, padded: bool) -> torch.Tensor:
    if padded:
        return torch.randn(rows, cols + 24, device="cuda").to(dtype)[:, 8 : 8 + cols]
    return torch.randn(rows, cols, device="cuda").to(dtype)


def _calls(dtype: torch.dtype, padded: bool) -> list[Callable[[], Any]]:
    calls: list[Callable[[], Any]] = []
    scale = torch.tensor([0.02], device="cuda")
    for rows, cols in SHAPES:
        x, r = _tensor(rows, cols, dtype, padded), _tensor(rows, cols, dtype, padded)
        w = torch.randn(cols, device="cuda").to(dtype)
        gated = _tensor(rows, 2 * cols, dtype, padded)
        positions = torch.randint(0, 256, (rows,), device="cuda")
        cache = rope_cos_sin_cache(256, 64, dtype=dtype, device="cuda")
        key = _tensor(rows, 128 * max(1, cols // 512), dtype, padded)  # whole heads
        calls += [
            lambda g=gated: ops.silu_and_mul(g),
            lambda g=gated: ops.gelu_and_mul(g, "tanh"),
            lambda g=gated: ops.silu_and_mul_static_fp8_quant(g, scale),
            lambda x=x: ops.static_scaled_fp8_quant(x, scale),
            lambda x=x: ops.dynamic_scaled_fp8_quant(x),
            lambda x=x: ops.dynamic_scaled_fp8_quant(x, True, scale * 100),
            lambda x=x, w=w: ops.rms_norm_static_fp8_quant(x, w, 1e-6, scale),
            lambda x=x, r=r: ops.fused_add_rms_norm_static_fp8_quant(x, r, None, 1e-6, scale),
            lambda p=positions, q=x, k=key, c=cache: ops.rotary_embedding(p, q, k, 128, c, True),
            lambda p=positions, q=x, c=cache: ops.rotary_embedding.maybe_inplace(
                p, q.clone(), None, 128, c, False
            ),
        ]
    return calls


def _same(a: Any, b: Any) -> None:
    if isinstance(a, (tuple, list)):
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif a is None:
        assert b is None
    else:
        torch.testing.assert_close(a.float(), b.float(), atol=0, rtol=0, equal_nan=True)


@pytest.mark.parametrize("padded", [False, True])
def test_fast_and_triton_launches_agree_while_inputs_change(padded: bool) -> None:
    calls = [call for dtype in DTYPES for call in _calls(dtype, padded)]
    with fast_launch(False):
        expected = [call() for call in calls]
    first = [call() for call in calls]  # caches each specialization (already compiled)
    slow = _slow_launches()
    second = [call() for call in reversed(calls)][::-1]  # another order, all from the cache
    assert _slow_launches() == slow, "every specialization was cached on first sight"
    for e, f, s in zip(expected, first, second, strict=True):
        _same(f, e)
        _same(s, e)
    assert all(launcher.fast_path_off_reason is None for launcher in LAUNCHERS)


def test_a_decode_step_replays_from_a_cuda_graph() -> None:
    tokens, hidden, heads, kv_heads, head_size = 4, 4096, 32, 8, 128
    x = torch.randn(tokens, hidden, device="cuda").to(torch.bfloat16)
    residual = torch.randn_like(x)
    w = torch.randn(hidden, device="cuda").to(torch.bfloat16)
    qkv = torch.randn(tokens, heads + 2 * kv_heads, head_size, device="cuda").to(torch.bfloat16)
    gate_up = torch.randn(tokens, 2 * 14336, device="cuda").to(torch.bfloat16)
    positions = torch.randint(0, 4096, (tokens,), device="cuda")
    cache = rope_cos_sin_cache(4096, head_size, dtype=torch.bfloat16, device="cuda")
    scale = torch.tensor([0.05], device="cuda")

    def step() -> Any:
        q8, summed = ops.fused_add_rms_norm_static_fp8_quant(x, residual, w, 1e-6, scale)
        q, k = qkv[:, :heads], qkv[:, heads : heads + kv_heads]
        ops.rotary_embedding.maybe_inplace(positions, q, k, head_size, cache, True)
        activated = ops.silu_and_mul_static_fp8_quant(gate_up, scale)
        dynamic = ops.dynamic_scaled_fp8_quant(summed, True)
        return q8, summed, qkv.clone(), activated, dynamic

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()
    torch.cuda.current_stream().wait_stream(side)
    slow = _slow_launches()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = step()
    assert _slow_launches() == slow, "capture used the fast path"
    for t in (x, residual, qkv, gate_up):
        t.copy_(torch.randn_like(t, dtype=torch.float32).to(t.dtype))
    before = qkv.clone()
    graph.replay()
    torch.cuda.synchronize()
    qkv.copy_(before)  # eager rotates the same inputs again
    _same(captured, step())
