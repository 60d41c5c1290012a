"""The cuda provider of rotary_embedding beyond the conformance suite: the layouts it takes and
rejects, in-place writes, out-of-range positions, torch.compile of both overloads."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ir_kernels_cuda._support import PROVIDER
from ir_op import enable_torch_wrap, ops
from ir_op.ops.rotary import rope_cos_sin_cache
from ir_op.testing import assert_outputs_close
from ir_op.testing.pytest_plugin import DeviceUnderTest

op = ops.rotary_embedding
impl = op.impls[PROVIDER]


@pytest.fixture
def device(device: str) -> str:
    """The conftest's device, with rotary_embedding's cuda provider first (until the test
    ends: the conftest's fixture restores the priorities)."""
    op.set_default([PROVIDER, "native"])
    return device


def bf16(*shape: int, device: str) -> torch.Tensor:
    return torch.randn(*shape, device=device).to(torch.bfloat16)


def qkv_views(tokens: int, heads: int, kv_heads: int, head_size: int, device: str) -> Any:
    """Query and key as per-head views of one fused projection (head stride = head_size, token
    stride = the whole projection), as attention layers slice them."""
    qkv = bf16(tokens, heads + 2 * kv_heads, head_size, device=device)
    return qkv, qkv[:, :heads], qkv[:, heads : heads + kv_heads]


# -- supports_args ------------------------------------------------------------------------------


def test_supports_args(device: str) -> None:
    positions = torch.arange(4, device=device)
    q, k = bf16(4, 256, device=device), bf16(4, 64, device=device)
    cache = rope_cos_sin_cache(32, 64, dtype=torch.bfloat16, device=device)
    good = (positions, q, k, 64, cache, True)
    _, q3, k3 = qkv_views(4, 4, 1, 64, device)
    wide_cache = rope_cos_sin_cache(32, 80, dtype=torch.bfloat16, device=device)

    def with_(rotary_dim: int | None = None, **change: Any) -> tuple[Any, ...]:
        names = ("positions", "query", "key", "head_size", "cos_sin_cache", "is_neox_style")
        values = dict(zip(names, good, strict=True)) | change
        return (*(values[n] for n in names), rotary_dim)

    cases: list[tuple[str, tuple[Any, ...], bool]] = [
        ("flat", good, True),
        ("no key", with_(key=None), True),
        ("gpt-j", with_(is_neox_style=False), True),
        ("int32 positions", with_(positions=positions.int()), True),
        ("per head, qkv views", with_(query=q3, key=k3), True),
        ("padded tokens", with_(query=bf16(4, 300, device=device)[:, :256]), True),
        ("fp32 cache", with_(cos_sin_cache=cache.float()), True),
        ("fp16 query, fp32 key", with_(query=q.half(), key=k.float()), True),
        ("partial rotary", with_(cos_sin_cache=cache[:, :32]), True),
        ("rotary_dim given", with_(rotary_dim=64), True),
        ("positions [2, 2]", with_(positions=positions.view(2, 2), query=q.view(2, 2, 256),
                                  key=k.view(2, 2, 64)), True),
        ("cache rows strided", with_(cos_sin_cache=wide_cache[:, :64]), True),
        ("rotary_dim mismatch", with_(rotary_dim=32), False),
        ("odd rotary width", with_(cos_sin_cache=cache[:, :63]), False),
        ("rotary wider than a head", with_(head_size=32), False),
        ("head_size does not divide", with_(head_size=48), False),
        ("float positions", with_(positions=positions.float()), False),
        ("fp64 query", with_(query=q.double()), False),
        ("fp64 key", with_(key=k.double()), False),
        ("fp64 cache", with_(cos_sin_cache=cache.double()), False),
        ("cache last dim strided", with_(cos_sin_cache=cache.t().contiguous().t()), False),
        ("transposed query", with_(query=q.t().contiguous().t()), False),
        ("tokens overlap", with_(query=q[:1].expand(4, 256)), False),
        ("heads overlap", with_(query=q.as_strided((4, 4, 64), (256, 32, 1))), False),
        ("wrong token count", with_(query=q[:3]), False),
        ("meta key", with_(key=k.to("meta")), False),
    ]  # fmt: skip
    for name, args, expected in cases:
        assert impl.supports_args(*args) is expected, name


# -- numerics beyond the suite's layouts --------------------------------------------------------


@pytest.mark.parametrize("neox", [True, False])
@pytest.mark.parametrize(("head_size", "rotary_dim"), [(64, 64), (80, 32)])
def test_per_head_views_of_a_fused_projection(
    device: str, neox: bool, head_size: int, rotary_dim: int
) -> None:
    torch.manual_seed(0)
    qkv, q, k = qkv_views(5, 4, 2, head_size, device)
    positions = torch.randint(0, 64, (5,), device=device, dtype=torch.int32)
    cache = rope_cos_sin_cache(64, rotary_dim, dtype=torch.float32, device=device)
    args = (positions, q, k, head_size, cache, neox)
    assert impl.supports_args(*args)
    expected = op.native_fn(*args)
    assert_outputs_close(op, op(*args), expected)  # out of place
    before = qkv.clone()
    result = op.maybe_inplace(*args)
    assert result[0] is q and result[1] is k
    assert_outputs_close(op, result, expected)
    torch.testing.assert_close(qkv[:, 6:], before[:, 6:], atol=0, rtol=0)  # values untouched
    torch.testing.assert_close(q[..., rotary_dim:], before[:, :4, rotary_dim:], atol=0, rtol=0)


def test_in_place_without_a_key(device: str) -> None:
    query = bf16(3, 2, 64, device=device)
    cache = rope_cos_sin_cache(8, 64, dtype=torch.bfloat16, device=device)
    positions = torch.tensor([3, 0, 7], device=device)
    expected = op.native_fn(positions, query, None, 64, cache, False)
    q, k = op.maybe_inplace(positions, query, None, 64, cache, False)
    assert q is query and k is None
    assert_outputs_close(op, (q, k), expected)


def test_positions_of_any_shape(device: str) -> None:
    torch.manual_seed(1)
    positions = torch.randint(0, 32, (2, 3), device=device)[:, ::1]
    query, key = bf16(2, 3, 4, 32, device=device), bf16(2, 3, 64, device=device)
    cache = rope_cos_sin_cache(32, 32, dtype=torch.bfloat16, device=device)
    args = (positions.t().contiguous().t(), query, key, 32, cache, False)  # strided positions
    assert impl.supports_args(*args)
    assert_outputs_close(op, op(*args), op.native_fn(*args))


def test_positions_out_of_range_give_nan(device: str) -> None:
    query = bf16(3, 64, device=device)
    cache = rope_cos_sin_cache(8, 32, dtype=torch.bfloat16, device=device)
    positions = torch.tensor([1, 8, -1], device=device)
    q, _ = op(positions, query, None, 64, cache, True)
    expected = op.native_fn(positions[:1], query[:1], None, 64, cache, True)
    assert_outputs_close(op, (q[:1], None), expected)
    assert q[1:, :32].isnan().all()  # the rotated elements
    torch.testing.assert_close(q[1:, 32:], query[1:, 32:], atol=0, rtol=0)  # the rest copied


def test_one_buffer_for_query_and_key_computes_out_of_place(device: str) -> None:
    qk = bf16(4, 128, device=device)
    cache = rope_cos_sin_cache(16, 64, dtype=torch.bfloat16, device=device)
    positions = torch.arange(4, device=device)
    expected = op.native_fn(positions, qk, qk, 64, cache, True)
    q, k = op.maybe_inplace(positions, qk, qk, 64, cache, True)
    assert q.data_ptr() != k.data_ptr()
    assert_outputs_close(op, (q, k), expected)


# -- operators and torch.compile ----------------------------------------------------------------


@pytest.mark.parametrize("wrap", [False, True])
def test_torch_compile_full_graph(ir_device: DeviceUnderTest, device: str, wrap: bool) -> None:
    """In place and out of place, compiled: one graph, eager's results."""
    torch._dynamo.reset()
    positions = torch.arange(5, device=device)
    cache = rope_cos_sin_cache(8, 32, dtype=torch.bfloat16, device=device)
    query, key = bf16(5, 128, device=device), bf16(5, 64, device=device)

    def attention_inputs(positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> Any:
        q1, k1 = op(positions, q, k, 64, cache, True)
        return op.maybe_inplace(positions, q1 * 2, k1, 64, cache, False)

    backend = "aot_eager" if ir_device.emulated else "inductor"
    with enable_torch_wrap(wrap):
        eager = attention_inputs(positions, query.clone(), key.clone())
        compiled = torch.compile(attention_inputs, fullgraph=True, backend=backend)
        result = compiled(positions, query.clone(), key.clone())
    assert_outputs_close(op, result, eager)
