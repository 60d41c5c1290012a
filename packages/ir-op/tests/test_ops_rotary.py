"""rotary_embedding against a float64 reference that rotates complex numbers."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, IrOpInplace, enable_torch_wrap, ops, register_op
from ir_op.ops.rotary import ROTARY_EMBEDDING_SCHEMA, rope_cos_sin_cache
from ir_op.testing import assert_outputs_close, random_rows
from ir_op.testing.references import ref_rotary_embedding, rounded_like

pytestmark = pytest.mark.usefixtures("native_priorities")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
rotary_embedding = ops.rotary_embedding


def check_against_reference(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cache: Tensor,
    is_neox_style: bool,
    rotary_dim: int | None = None,
) -> None:
    saved = (query.clone(), None if key is None else key.clone())
    args = (positions, query, key, head_size, cache, is_neox_style, rotary_dim)
    actual = rotary_embedding(*args)
    assert_outputs_close(
        rotary_embedding, actual, rounded_like(ref_rotary_embedding(*args), actual)
    )
    assert (actual[1] is None) == (key is None)
    assert torch.equal(query, saved[0])  # the default overload never writes its inputs
    assert key is None or torch.equal(key, saved[1])  # type: ignore[arg-type]


def qkv_views(
    tokens: int, heads: int, kv_heads: int, head_size: int, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """Query and key sliced out of one fused QKV projection: rows are not contiguous."""
    q_width, kv_width = heads * head_size, kv_heads * head_size
    qkv = random_rows((tokens,), q_width + 2 * kv_width, dtype)
    return qkv[:, :q_width], qkv[:, q_width : q_width + kv_width]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("is_neox_style", [True, False])
@pytest.mark.parametrize("per_head_layout", [False, True])
@pytest.mark.parametrize("rotary_dim", [64, 24])
@pytest.mark.parametrize("with_key", [True, False])
@pytest.mark.parametrize("tokens", [1, 13, 0])
def test_matches_reference(
    dtype: torch.dtype,
    is_neox_style: bool,
    per_head_layout: bool,
    rotary_dim: int,
    with_key: bool,
    tokens: int,
) -> None:
    torch.manual_seed(tokens + rotary_dim)
    head_size, heads, kv_heads = 64, 3, 1
    query, key = qkv_views(tokens, heads, kv_heads, head_size, dtype)
    if per_head_layout:
        query = query.unflatten(-1, (heads, head_size))
        key = key.unflatten(-1, (kv_heads, head_size))
    positions = torch.randint(0, 100, (tokens,))
    cache = rope_cos_sin_cache(100, rotary_dim, dtype=dtype)
    check_against_reference(
        positions, query, key if with_key else None, head_size, cache, is_neox_style
    )


@pytest.mark.parametrize("is_neox_style", [True, False])
def test_two_dimensional_positions_and_odd_head_size(is_neox_style: bool) -> None:
    # positions [batch, seq]; head_size 33 with rotary_dim 10 leaves 23 elements untouched
    positions = torch.randint(0, 50, (2, 5), dtype=torch.int32)
    query = random_rows((2, 5), 4 * 33, torch.bfloat16)
    key = random_rows((2, 5, 2), 33, torch.bfloat16, strided=True)
    cache = rope_cos_sin_cache(50, 10, base=500.0)
    check_against_reference(positions, query, key, 33, cache, is_neox_style, 10)


@pytest.mark.parametrize("cache_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cache_in_another_dtype(cache_dtype: torch.dtype, dtype: torch.dtype) -> None:
    positions = torch.randint(0, 64, (9,))
    query = random_rows((9,), 2 * 32, dtype)
    cache = rope_cos_sin_cache(64, 32, dtype=cache_dtype)
    check_against_reference(positions, query, None, 32, cache, True)


def test_rotation_is_float32_math_rounded_once() -> None:
    positions = torch.randint(0, 64, (6,))
    query = random_rows((6,), 4 * 16, torch.bfloat16)
    cache = rope_cos_sin_cache(64, 16, dtype=torch.bfloat16)
    q, _ = rotary_embedding(positions, query, None, 16, cache, True)
    cos, sin = cache.float()[positions].chunk(2, dim=-1)
    heads = query.float().unflatten(-1, (4, 16))
    a, b = heads[..., :8], heads[..., 8:]
    c, s = cos[:, None], sin[:, None]
    expected = torch.cat((a * c - b * s, b * c + a * s), dim=-1).to(torch.bfloat16).flatten(-2)
    torch.testing.assert_close(q, expected, atol=0, rtol=0)


def test_position_zero_is_the_identity_and_rest_passes_through() -> None:
    query = random_rows((4,), 2 * 16, torch.float16)
    cache = rope_cos_sin_cache(8, 8)
    q, _ = rotary_embedding(torch.zeros(4, dtype=torch.int64), query, None, 16, cache, False)
    assert torch.equal(q, query)
    q, _ = rotary_embedding(torch.full((4,), 5), query, None, 16, cache, False)
    heads, out = query.unflatten(-1, (2, 16)), q.unflatten(-1, (2, 16))
    assert torch.equal(out[..., 8:], heads[..., 8:])
    assert not torch.equal(out[..., :8], heads[..., :8])


def test_styles_differ() -> None:
    positions = torch.arange(1, 5)
    query = random_rows((4,), 32, torch.float32)
    cache = rope_cos_sin_cache(8, 32)
    neox, _ = rotary_embedding(positions, query, None, 32, cache, True)
    gptj, _ = rotary_embedding(positions, query, None, 32, cache, False)
    assert not torch.allclose(neox, gptj)


def test_nan_stays_in_its_head() -> None:
    positions = torch.arange(3)
    query = random_rows((3,), 2 * 8, torch.float32)
    query[1, 2] = float("nan")
    q, _ = rotary_embedding(positions, query, None, 8, rope_cos_sin_cache(4, 8), True)
    assert q[1, :8].isnan().any() and not q[1, 8:].isnan().any()
    assert not q[[0, 2]].isnan().any()


def _good() -> dict[str, object]:
    return {
        "positions": torch.arange(4),
        "query": torch.randn(4, 2 * 16),
        "key": torch.randn(4, 16),
        "head_size": 16,
        "cos_sin_cache": rope_cos_sin_cache(8, 16),
        "is_neox_style": True,
        "rotary_dim": None,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"positions": torch.arange(4.0)}, "positions must be int32 or int64, got torch.float32"),
        ({"positions": torch.tensor(1)}, "positions must have at least one dimension"),
        ({"query": torch.randn(5, 32)}, r"query has shape \[5, 32\]; expected"),
        ({"query": torch.randn(4, 2, 8)}, r"query has shape \[4, 2, 8\]; expected"),
        ({"key": torch.randn(4, 24)}, "key's last dimension 24 is not a multiple of head_size=16"),
        ({"key": torch.randn(4, 1, 1, 16)}, r"key has shape \[4, 1, 1, 16\]"),
        ({"head_size": 0}, "head_size must be an int >= 1, got 0"),
        ({"rotary_dim": 8}, "rotary_dim=8 does not match cos_sin_cache's last dimension 16"),
        ({"cos_sin_cache": torch.randn(8, 7)}, "rotary dimension 7 must be even"),
        ({"cos_sin_cache": torch.randn(8, 18)}, r"rotary dimension 18 must be even and in \[2, h"),
        ({"cos_sin_cache": torch.randn(8)}, r"floating-point \[max_position, rotary_dim\]"),
        ({"cos_sin_cache": torch.ones(8, 16, dtype=torch.int64)}, "got torch.int64"),
    ],
)
def test_bad_arguments(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rotary_embedding(**{**_good(), **change})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [{}, {"per_head_layout": True, "rotary_dim": 32}])
def test_generated_inputs_match_reference(dtype: torch.dtype, kwargs: dict[str, object]) -> None:
    args = rotary_embedding.generate_inputs(
        num_tokens=7, hidden_size=512, dtype=dtype, is_neox_style=False, **kwargs
    )
    positions, query, key, head_size, cache, _, rotary_dim = args
    assert head_size == 128 and query.shape[0] == 7 and query.numel() == 7 * 512
    assert key.numel() == 7 * 128  # a quarter of the query heads
    assert cache.dtype == dtype and cache.shape == (8192, rotary_dim or 128)
    assert positions.dtype == torch.int64 and positions.min() >= 0 and positions.max() < 8192
    check_against_reference(*args)


def test_generator_head_size_defaults() -> None:
    for hidden, head_size in ((96, 32), (4096, 128), (48, 16)):
        args = rotary_embedding.generate_inputs(num_tokens=2, hidden_size=hidden, dtype=torch.half)
        assert args[3] == head_size
    with pytest.raises(ValueError, match="hidden_size=769 has no even head size"):
        rotary_embedding.generate_inputs(num_tokens=2, hidden_size=769, dtype=torch.half)
    with pytest.raises(ValueError, match="hidden_size=100 is not a multiple of head_size=64"):
        rotary_embedding.generate_inputs(
            num_tokens=2, hidden_size=100, dtype=torch.half, head_size=64
        )


def test_schema_and_inplace_schema() -> None:
    assert rotary_embedding.schema == ROTARY_EMBEDDING_SCHEMA
    assert rotary_embedding.activations == ["query", "key"]
    schema = str(rotary_embedding.maybe_inplace.torch_op._schema)
    assert "Tensor(a0!) query, Tensor(a1!)? key" in schema
    assert schema.endswith("-> (Tensor, Tensor)")  # functionalizable: plain Tensor outputs


# -- maybe_inplace with an in-place provider, on a copy of the op in an isolated registry -----


def rope_in_place(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox_style: bool,
    rotary_dim: int | None = None,
) -> tuple[Tensor, Tensor | None]:
    q, k = rotary_embedding.native_fn(
        positions, query, key, head_size, cos_sin_cache, is_neox_style, rotary_dim
    )
    query.copy_(q)
    if key is not None and k is not None:
        key.copy_(k)
    return query, key


@pytest.fixture
def rope(isolated: dict[str, IrOp]) -> IrOpInplace:
    op = register_op(
        name="rope",
        activations=["query", "key"],
        allow_inplace=True,
        schema=ROTARY_EMBEDDING_SCHEMA,
    )(rotary_embedding.native_fn)
    op.register_impl("inplace", inplace=True)(rope_in_place)
    op.set_default(["inplace"])
    return op


@pytest.mark.parametrize("wrap", [True, False])
@pytest.mark.parametrize("with_key", [True, False])
def test_maybe_inplace_writes_into_query_and_key(
    rope: IrOpInplace, wrap: bool, with_key: bool
) -> None:
    positions, query, key, *rest = rotary_embedding.generate_inputs(
        num_tokens=5, hidden_size=64, dtype=torch.float32, with_key=with_key
    )
    expected = rotary_embedding(positions, query, key, *rest)
    with enable_torch_wrap(wrap):
        q, k = rope.maybe_inplace(positions, query, key, *rest)
    assert q.data_ptr() == query.data_ptr()
    torch.testing.assert_close(q, expected[0])
    if with_key:
        assert k is not None and k.data_ptr() == key.data_ptr()
        torch.testing.assert_close(k, expected[1])
    else:
        assert k is None


def test_maybe_inplace_absent_key_by_keyword_and_the_torch_operator(rope: IrOpInplace) -> None:
    positions, query, _, head_size, cache, neox, _ = rotary_embedding.generate_inputs(
        num_tokens=3, hidden_size=32, dtype=torch.float32, with_key=False
    )
    _, k = rope.maybe_inplace(positions, query, key=None, head_size=head_size,
                              cos_sin_cache=cache, is_neox_style=neox)  # fmt: skip
    assert k is None
    # the torch operator itself returns an empty tensor in place of None
    _, placeholder = rope.maybe_inplace.torch_op(positions, query, None, head_size, cache, neox)
    assert isinstance(placeholder, Tensor) and placeholder.numel() == 0


def test_default_overload_leaves_inputs_with_an_inplace_provider(rope: IrOpInplace) -> None:
    args = rotary_embedding.generate_inputs(num_tokens=4, hidden_size=64, dtype=torch.float32)
    saved = (args[1].clone(), args[2].clone())
    q, _ = rope(*args)
    assert torch.equal(args[1], saved[0]) and torch.equal(args[2], saved[1])
    assert q.data_ptr() != args[1].data_ptr()


@pytest.mark.parametrize("with_key", [True, False])
def test_maybe_inplace_compiles(rope: IrOpInplace, with_key: bool) -> None:
    """AOTAutograd functionalizes the mutating overload, optional key included."""
    args = rotary_embedding.generate_inputs(
        num_tokens=4, hidden_size=64, dtype=torch.float32, with_key=with_key
    )
    expected = rotary_embedding(*args)
    torch._dynamo.reset()
    compiled = torch.compile(rope.maybe_inplace, backend="aot_eager", fullgraph=True)
    q, k = compiled(*args)
    torch.testing.assert_close(q, expected[0])
    if with_key:
        torch.testing.assert_close(k, expected[1])
    else:
        assert k is None
