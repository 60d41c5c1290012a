"""Rotary position embedding (RoPE) of queries and keys."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ir_op.op import register_op
from ir_op.ops._checks import check_bool, check_float_tensor, check_int, compute_dtype, describe
from ir_op.ops._inputs import activations

# torch.library.infer_schema cannot express a ``tuple[Tensor, Tensor | None]`` return (torch
# 2.13 rejects it), so the schema is given; it is what inference gives for the parameters.
ROTARY_EMBEDDING_SCHEMA = (
    "(Tensor positions, Tensor query, Tensor? key, SymInt head_size, Tensor cos_sin_cache, "
    "bool is_neox_style, SymInt? rotary_dim=None) -> (Tensor, Tensor?)"
)

_POSITION_DTYPES = (torch.int32, torch.int64)


def _num_heads(name: str, t: Tensor, positions: Tensor, head_size: int) -> int:
    """Heads of ``t``, which is ``[*P, heads * head_size]`` or ``[*P, heads, head_size]`` for
    ``positions`` of shape ``P``."""
    lead = positions.dim()
    layouts = (
        f"[*positions.shape, heads * head_size] or [*positions.shape, heads, head_size] with "
        f"positions.shape={list(positions.shape)} and head_size={head_size}"
    )
    if tuple(t.shape[:lead]) != tuple(positions.shape) or t.dim() not in (lead + 1, lead + 2):
        raise ValueError(f"rotary_embedding: {name} has shape {list(t.shape)}; expected {layouts}")
    if t.dim() == lead + 2:
        if t.shape[-1] != head_size:
            raise ValueError(
                f"rotary_embedding: {name} has shape {list(t.shape)}; expected {layouts}"
            )
        return t.shape[-2]
    if t.shape[-1] % head_size != 0:
        raise ValueError(
            f"rotary_embedding: {name}'s last dimension {t.shape[-1]} is not a multiple of "
            f"head_size={head_size}; expected {layouts}"
        )
    return t.shape[-1] // head_size


def _rotary_width(
    positions: Tensor, head_size: int, cos_sin_cache: Tensor, rotary_dim: int | None
) -> int:
    """Check the arguments that do not depend on query or key; return the rotated width."""
    if positions.dtype not in _POSITION_DTYPES:
        raise ValueError(
            f"rotary_embedding: positions must be int32 or int64, got {positions.dtype}"
        )
    if positions.dim() < 1:
        raise ValueError("rotary_embedding: positions must have at least one dimension (tokens)")
    if head_size <= 0:
        raise ValueError(f"rotary_embedding: head_size={head_size} must be > 0")
    if cos_sin_cache.dim() != 2 or not cos_sin_cache.is_floating_point():
        raise ValueError(
            "rotary_embedding: cos_sin_cache must be a floating-point [max_position, rotary_dim] "
            f"tensor, got {cos_sin_cache.dtype} of shape {list(cos_sin_cache.shape)}"
        )
    width = cos_sin_cache.shape[1]
    if rotary_dim is not None and rotary_dim != width:
        raise ValueError(
            f"rotary_embedding: rotary_dim={rotary_dim} does not match cos_sin_cache's last "
            f"dimension {width}"
        )
    if width % 2 or not 0 < width <= head_size:
        raise ValueError(
            f"rotary_embedding: the rotary dimension {width} must be even and in "
            f"[2, head_size={head_size}]"
        )
    return width


def _rotate(
    t: Tensor, heads: int, head_size: int, cos: Tensor, sin: Tensor, is_neox_style: bool
) -> Tensor:
    """``t`` rotated by per-token ``cos``/``sin`` (``[tokens, rotary_dim / 2]``, in the
    compute dtype)."""
    half = cos.shape[-1]
    rows = t.reshape(cos.shape[0], heads, head_size)
    rotated = rows[..., : 2 * half].to(cos.dtype)
    c, s = cos.unsqueeze(-2), sin.unsqueeze(-2)  # broadcast over heads
    if is_neox_style:
        x1, x2 = rotated[..., :half], rotated[..., half:]
        out = torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)
    else:
        x1, x2 = rotated[..., 0::2], rotated[..., 1::2]
        out = torch.stack((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1).flatten(-2)
    return torch.cat((out.to(t.dtype), rows[..., 2 * half :]), dim=-1).reshape(t.shape)


def _validate_rotary_embedding(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox_style: bool,
    rotary_dim: int | None = None,
) -> None:
    op = "rotary_embedding"
    for name, value in (("positions", positions), ("cos_sin_cache", cos_sin_cache)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{op}: {name} must be a tensor, got {describe(value)}")
    check_float_tensor(op, "query", query)
    if key is not None:
        check_float_tensor(op, "key", key)
    check_int(op, "head_size", head_size, 1)
    check_bool(op, "is_neox_style", is_neox_style)
    if rotary_dim is not None:
        check_int(op, "rotary_dim", rotary_dim, 2)
    _rotary_width(positions, head_size, cos_sin_cache, rotary_dim)
    _num_heads("query", query, positions, head_size)
    if key is not None:
        _num_heads("key", key, positions, head_size)


@register_op(
    activations=["query", "key"],
    allow_inplace=True,
    schema=ROTARY_EMBEDDING_SCHEMA,
    validate=_validate_rotary_embedding,
)
def rotary_embedding(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox_style: bool,
    rotary_dim: int | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Rotate queries and keys by their positions' angles: returns ``(query, key)`` rotated.

    ``positions`` (int32 or int64) has shape ``P`` (``[tokens]``, usually); ``query`` and
    ``key`` are ``[*P, heads * head_size]`` or ``[*P, heads, head_size]`` (their head counts may
    differ); the outputs keep their shapes and dtypes. ``cos_sin_cache`` is
    ``[max_position, rotary_dim]``: row ``p`` holds ``cos(p * theta_i)`` for the
    ``rotary_dim / 2`` frequencies, then ``sin(p * theta_i)``. ``rotary_dim``, when given, must
    equal the cache's last dimension; it is even and at most ``head_size``.

    In each head the first ``rotary_dim`` elements form pairs ``(a, b)`` that become
    ``(a * cos - b * sin, b * cos + a * sin)``: NeoX style (``is_neox_style``) pairs element
    ``i`` with ``i + rotary_dim / 2``, GPT-J style pairs ``2i`` with ``2i + 1``. Elements past
    ``rotary_dim`` are copied unchanged (partial rotation). The math is float32 (the cache read
    in float32; float64 for a float64 ``query``); each output is rounded once to its input's
    dtype. ``key`` may be ``None``; its output is then ``None``. Positions must lie in
    ``[0, max_position)``. With ``maybe_inplace`` a provider may write the outputs into
    ``query`` and ``key``.
    """
    width = _rotary_width(positions, head_size, cos_sin_cache, rotary_dim)
    query_heads = _num_heads("query", query, positions, head_size)
    key_heads = _num_heads("key", key, positions, head_size) if key is not None else 0
    cos_sin = cos_sin_cache.index_select(0, positions.reshape(-1)).to(compute_dtype(query))
    cos, sin = cos_sin[:, : width // 2], cos_sin[:, width // 2 :]
    query_out = _rotate(query, query_heads, head_size, cos, sin, is_neox_style)
    if key is None:
        return query_out, None
    return query_out, _rotate(key, key_heads, head_size, cos, sin, is_neox_style)


def rope_cos_sin_cache(
    max_position: int,
    rotary_dim: int,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The standard RoPE cache: ``theta_i = base ** (-2i / rotary_dim)``, rows ``[cos | sin]``.

    Computed in float64, then cast to ``dtype`` (models keep it in their own dtype).
    """
    exponents = torch.arange(0, rotary_dim, 2, dtype=torch.float64, device=device) / rotary_dim
    angles = torch.outer(
        torch.arange(max_position, dtype=torch.float64, device=device), base**-exponents
    )
    return torch.cat((angles.cos(), angles.sin()), dim=-1).to(dtype)


@rotary_embedding.register_input_generator
def _rotary_embedding_inputs(
    num_tokens: int,
    hidden_size: int,
    dtype: torch.dtype,
    head_size: int | None = None,
    num_kv_heads: int | None = None,
    rotary_dim: int | None = None,
    is_neox_style: bool = True,
    max_position: int = 8192,
    base: float = 10000.0,
    with_key: bool = True,
    per_head_layout: bool = False,
    cache_dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[object, ...]:
    """Queries of ``hidden_size = num_heads * head_size`` and keys of ``num_kv_heads`` heads.

    ``head_size`` defaults to the largest power of two up to 128 that divides ``hidden_size``;
    ``num_kv_heads`` to a quarter of the query heads (grouped-query attention), at least 1;
    ``rotary_dim`` to ``head_size`` (it is passed to the op only when given). Positions are
    random in ``[0, max_position)``; the cache is :func:`rope_cos_sin_cache` in ``cache_dtype``
    (default: ``dtype``, as models keep it). ``per_head_layout`` gives ``[tokens, heads,
    head_size]`` tensors instead of ``[tokens, heads * head_size]``.
    """
    if head_size is None:
        head_size = math.gcd(hidden_size, 128)
        if head_size < 2:
            raise ValueError(
                f"hidden_size={hidden_size} has no even head size up to 128; pass head_size"
            )
    if hidden_size % head_size:
        raise ValueError(f"hidden_size={hidden_size} is not a multiple of head_size={head_size}")
    num_heads = hidden_size // head_size
    kv_heads = num_kv_heads if num_kv_heads is not None else max(1, num_heads // 4)
    width = rotary_dim if rotary_dim is not None else head_size - head_size % 2
    positions = torch.randint(0, max_position, (num_tokens,), dtype=torch.int64, device=device)
    query = activations(num_tokens, num_heads * head_size, dtype, device)
    key = activations(num_tokens, kv_heads * head_size, dtype, device) if with_key else None
    if per_head_layout:
        query = query.view(num_tokens, num_heads, head_size)
        key = key.view(num_tokens, kv_heads, head_size) if key is not None else None
    cache = rope_cos_sin_cache(max_position, width, base, cache_dtype or dtype, device)
    return positions, query, key, head_size, cache, is_neox_style, rotary_dim


# A provider that keeps the rotation in the input dtype (or fuses the multiply-adds) rounds
# the products ``a * cos`` and ``b * sin``, whose magnitude is that of the inputs, not of
# their difference: allow about one ulp at magnitude 2 absolutely.
rotary_embedding.override_tolerance(torch.float16, atol=2e-3, rtol=2e-3)
rotary_embedding.override_tolerance(torch.bfloat16, atol=1.6e-2, rtol=1.6e-2)
