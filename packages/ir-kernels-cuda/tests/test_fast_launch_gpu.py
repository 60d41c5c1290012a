"""On an NVIDIA GPU: the providers launch through the fast path, with Triton's results.

The key and cache logic is unit-tested on the CPU in ir-op (``test_triton_launcher.py``); these
prove on the hardware that the fast path is the one taken, that it gives bit-identical results to
Triton's own launch while shapes, dtypes and strides change from call to call, that it launches
on torch's current stream, and that CUDA graphs capture it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from ir_kernels_cuda import activation, norm
from ir_kernels_cuda._support import PROVIDER
from ir_op import enable_torch_wrap, ops
from ir_op.testing import preserved_priorities
from ir_triton import KernelLauncher, fast_launch

pytestmark = pytest.mark.gpu

LAUNCHERS: list[KernelLauncher] = [
    norm.NORM.rows_launcher,
    norm.NORM.fused_rows_launcher,
    norm.NORM.looped_launcher,
    activation.ACTIVATION.sparse_rows_launcher,
    activation.ACTIVATION.sparse_looped_launcher,
]
SHAPES = [(1, 4096), (7, 769), (64, 5120), (512, 8192), (3, 12289), (33, 8)]
DTYPES = [torch.bfloat16, torch.float16, torch.float32]


@pytest.fixture(autouse=True)
def _cuda_first() -> Iterator[None]:
    with preserved_priorities(), enable_torch_wrap(False):
        for op in (ops.rms_norm, ops.fused_add_rms_norm, ops.gelu_and_mul_sparse):
            op.set_default([PROVIDER])
        yield


def _slow_launches() -> int:
    return sum(launcher.slow_launches for launcher in LAUNCHERS)


def _tensor(rows: int, cols: int, dtype: torch.dtype, padded: bool) -> torch.Tensor:
    if padded:
        return torch.randn(rows, cols + 24, device="cuda").to(dtype)[:, 3 : 3 + cols]
    return torch.randn(rows, cols, device="cuda").to(dtype)


def _calls(dtype: torch.dtype, padded: bool) -> list[Callable[[], Any]]:
    calls: list[Callable[[], Any]] = []
    for rows, cols in SHAPES:
        x, r = _tensor(rows, cols, dtype, padded), _tensor(rows, cols, dtype, padded)
        w = torch.randn(cols, device="cuda").to(dtype)
        gated = _tensor(rows, 2 * cols, dtype, padded)
        calls += [
            lambda x=x, w=w: ops.rms_norm(x, w, 1e-6),
            lambda x=x: ops.rms_norm(x, None, 1e-5, max(1, x.shape[-1] // 3)),
            lambda x=x, r=r, w=w: ops.fused_add_rms_norm(x, r, w, 1e-6),
            lambda x=x, r=r, w=w: ops.fused_add_rms_norm.maybe_inplace(
                x.clone(), r.clone(), w, 1e-6
            ),
            lambda g=gated: ops.gelu_and_mul_sparse(g, 1.6, "tanh"),
            lambda g=gated: ops.gelu_and_mul_sparse(g, -0.5, "none"),
        ]
    return calls


def _same(a: Any, b: Any) -> None:
    torch.testing.assert_close(a, b, atol=0, rtol=0, equal_nan=True)


def test_the_fast_path_is_taken() -> None:
    x = torch.randn(1, 4096, device="cuda").to(torch.bfloat16)
    w = torch.randn(4096, device="cuda").to(torch.bfloat16)
    ops.rms_norm(x, w, 1e-6)  # first sight of this specialization: Triton's launch
    before = norm.NORM.rows_launcher.slow_launches
    for _ in range(20):
        ops.rms_norm(x, w, 1e-6)
    assert norm.NORM.rows_launcher.slow_launches == before
    assert norm.NORM.rows_launcher.cached_keys >= 1
    assert norm.NORM.rows_launcher.fast_path_off_reason is None


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


def test_cuda_graph_capture_takes_the_fast_path() -> None:
    x = torch.randn(8, 4096, device="cuda").to(torch.bfloat16)
    r = torch.randn(8, 4096, device="cuda").to(torch.bfloat16)
    w = torch.randn(4096, device="cuda").to(torch.bfloat16)

    def step() -> Any:
        normed = ops.rms_norm(x, w, 1e-6)
        return ops.fused_add_rms_norm(normed, r, w, 1e-6)

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
    x.copy_(torch.randn_like(x))
    r.copy_(torch.randn_like(r))
    graph.replay()
    torch.cuda.synchronize()
    _same(captured, step())


def test_launches_go_to_the_current_stream() -> None:
    x = torch.randn(64, 4096, device="cuda").to(torch.bfloat16)
    w = torch.randn(4096, device="cuda").to(torch.bfloat16)
    ops.rms_norm(x, w, 1e-6)  # cached
    fresh = torch.randn_like(x)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)  # the default stream would run ahead of the copy below
        x.copy_(fresh)
        out = ops.rms_norm(x, w, 1e-6)
    side.synchronize()
    tolerance = ops.rms_norm.get_tolerance(torch.bfloat16)
    torch.testing.assert_close(out, ops.rms_norm.native_fn(fresh, w, 1e-6), **tolerance)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_tensors_on_another_device_run_there() -> None:
    x = torch.randn(16, 4096, device="cuda:1").to(torch.bfloat16)
    w = torch.randn(4096, device="cuda:1").to(torch.bfloat16)
    assert torch.cuda.current_device() == 0
    for _ in range(2):
        out = ops.rms_norm(x, w, 1e-6)
    assert out.device == x.device
    tolerance = ops.rms_norm.get_tolerance(torch.bfloat16)
    torch.testing.assert_close(out, ops.rms_norm.native_fn(x, w, 1e-6), **tolerance)
