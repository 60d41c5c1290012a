"""``rotary_embedding`` (RoPE) in Triton, shared by the Triton kernel sets.

Semantics are those of ``ir_op.ops.rotary_embedding``: in each head, the pairs of the first
``rotary_dim`` elements (NeoX style: ``i`` and ``i + rotary_dim / 2``; GPT-J style: ``2i`` and
``2i + 1``) become ``(a cos - b sin, b cos + a sin)`` with the angles of the token's position
(``cos_sin_cache[position]``, read in float32); the math is float32 (the compiler may fuse a
product into the subtraction: within the op's tolerance), rounded once to each tensor's dtype;
the elements past ``rotary_dim`` are copied. A position outside ``[0, max_position)``, which
the native function rejects with an error, gives NaN in that token's rotated elements (a kernel
cannot raise without a device sync, and it never reads outside the cache).

Why one body for every vendor: the kernel is a gather of one cache row per token and a
streaming pass over query and key, with no reduction, no fp8 conversion and nothing that
depends on the register file beyond the tile size. What does differ by hardware is how many
lanes a warp has and which launch options the backend takes; a kernel set says that in a
:class:`RotaryLaunch` (elements per lane, lanes per warp, extra options), and
:class:`RotaryProviders` builds its operators and providers from it.

``rotary_kernel`` runs one program per token and block of ``HEADS_BLOCK`` heads, of the query
and then of the key (the grid's second axis), so one launch covers both and a decode step still
spreads over several multiprocessors. It reads the token's ``cos``/``sin`` once per program and
each element of query and key once; pairs are loaded as contiguous ``[heads, pairs]`` tiles
(NeoX: the two halves; GPT-J: whole rows, split into even and odd elements in registers), so
aligned heads move in 16-byte vectors. Head sizes, head counts and the rotary width are
constexprs (a model fixes them); rotary widths past ``HALF_BLOCK`` pairs loop over chunks.

Two providers share the kernel:

- the in-place one (``maybe_inplace``) writes the rotated elements back into ``query`` and
  ``key`` and leaves the rest untouched: it moves only the rotated bytes, half of the
  out-of-place traffic or less, and allocates nothing;
- the out-of-place one (the default overload) writes new contiguous tensors, copying the
  unrotated elements.

Arguments the kernel takes (:func:`rotary_embedding_supports_args`): int32 or int64
``positions`` of any shape ``P`` and layout; ``query`` and ``key`` (or no key) of fp16, bf16 or
fp32, each ``[*P, heads * head_size]`` or ``[*P, heads, head_size]`` with the last dimension
contiguous, any head stride that keeps heads apart, and token dimensions that collapse into one
index whose stride keeps tokens apart; a fp16, bf16 or fp32 ``cos_sin_cache``
``[max_position, rotary_dim]`` with its last dimension contiguous and any row stride; an even
``rotary_dim`` in ``[2, head_size]`` that matches the cache; every tensor on the platform's
device.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

from ir_op import ops
from ir_triton.configs import _power_of_two_at_least
from ir_triton.kernel_ops import define_kernel_op, tracing
from ir_triton.launcher import BoundLauncher, KernelLauncher
from ir_triton.rows import FLOAT_DTYPES, NOT_ARGUMENTS, on_platform_device
from ir_triton.supports import on_device_of

POSITION_DTYPES = (torch.int32, torch.int64)

# -- Triton kernel --------------------------------------------------------------------------------


@triton.jit  # type: ignore[untyped-decorator]
def rotate_heads(  # type: ignore[no-untyped-def]
    t_row,
    head_stride,
    out_row,
    first_head,
    cos_sin_row,
    position_ok,
    HEADS: tl.constexpr,
    HEAD_SIZE: tl.constexpr,
    ROTARY_DIM: tl.constexpr,
    HEADS_BLOCK: tl.constexpr,
    HALF_BLOCK: tl.constexpr,
    TAIL_BLOCK: tl.constexpr,
    NEOX: tl.constexpr,
    IN_PLACE: tl.constexpr,
):
    """Rotate heads ``first_head ..`` (``HEADS_BLOCK`` of them) of one token of one tensor.

    Where the token's position is out of range (``position_ok`` false) the angles load as NaN:
    native indexing would fail there, and a kernel must not read out of bounds.
    """
    HALF: tl.constexpr = ROTARY_DIM // 2
    # The angle mask is one comparison against a per-token bound rather than ``pair_mask &
    # position_ok``: Triton 3.9's interpreter gives a block ``&`` a scalar boolean int32 data,
    # which a load then refuses as a mask. This form compiles to the same code on every Triton.
    angle_bound = tl.where(position_ok, HALF, 0)
    heads = first_head + tl.arange(0, HEADS_BLOCK)
    head_mask = (heads < HEADS)[:, None]
    heads = heads.to(tl.int64)[:, None]
    t_heads = t_row + heads * head_stride
    # in place: the input's heads; else a new contiguous tensor
    out_heads = out_row + heads * (head_stride if IN_PLACE else HEAD_SIZE)

    for chunk in range((HALF + HALF_BLOCK - 1) // HALF_BLOCK):
        pairs = chunk * HALF_BLOCK + tl.arange(0, HALF_BLOCK)
        pair_mask = pairs < HALF
        angle_mask = pairs < angle_bound
        cos = tl.load(cos_sin_row + pairs, mask=angle_mask, other=float("nan")).to(tl.float32)
        sin = tl.load(cos_sin_row + HALF + pairs, mask=angle_mask, other=float("nan"))
        cos, sin = cos[None, :], sin.to(tl.float32)[None, :]
        mask = head_mask & pair_mask[None, :]
        if NEOX:
            first_ptrs = t_heads + pairs[None, :]
            a = tl.load(first_ptrs, mask=mask, other=0.0, eviction_policy="evict_first")
            b = tl.load(first_ptrs + HALF, mask=mask, other=0.0, eviction_policy="evict_first")
            a, b = a.to(tl.float32), b.to(tl.float32)
            out_ptrs = out_heads + pairs[None, :]
            tl.store(out_ptrs, (a * cos - b * sin).to(out_row.dtype.element_ty), mask=mask)
            tl.store(out_ptrs + HALF, (b * cos + a * sin).to(out_row.dtype.element_ty), mask=mask)
        else:
            cols = chunk * 2 * HALF_BLOCK + tl.arange(0, 2 * HALF_BLOCK)
            row_mask = head_mask & (cols < ROTARY_DIM)[None, :]
            interleaved = tl.load(
                t_heads + cols[None, :], mask=row_mask, other=0.0, eviction_policy="evict_first"
            ).to(tl.float32)
            a, b = tl.split(tl.reshape(interleaved, [HEADS_BLOCK, HALF_BLOCK, 2]))
            rotated = tl.join(a * cos - b * sin, b * cos + a * sin)
            rotated = tl.reshape(rotated, [HEADS_BLOCK, 2 * HALF_BLOCK])
            tl.store(out_heads + cols[None, :], rotated.to(out_row.dtype.element_ty), mask=row_mask)

    if not IN_PLACE and ROTARY_DIM < HEAD_SIZE:  # copy the unrotated elements
        TAIL: tl.constexpr = HEAD_SIZE - ROTARY_DIM
        for chunk in range((TAIL + TAIL_BLOCK - 1) // TAIL_BLOCK):
            cols = ROTARY_DIM + chunk * TAIL_BLOCK + tl.arange(0, TAIL_BLOCK)
            mask = head_mask & (cols < HEAD_SIZE)[None, :]
            kept = tl.load(
                t_heads + cols[None, :], mask=mask, other=0.0, eviction_policy="evict_first"
            )
            tl.store(out_heads + cols[None, :], kept, mask=mask)


@triton.jit  # type: ignore[untyped-decorator]
def rotary_kernel(  # type: ignore[no-untyped-def]
    positions_ptr,
    positions_stride,
    cos_sin_ptr,
    cos_sin_stride,
    max_position,
    query_ptr,
    query_token_stride,
    query_head_stride,
    query_out_ptr,
    key_ptr,
    key_token_stride,
    key_head_stride,
    key_out_ptr,
    QUERY_HEADS: tl.constexpr,
    KEY_HEADS: tl.constexpr,
    HEAD_SIZE: tl.constexpr,
    ROTARY_DIM: tl.constexpr,
    HEADS_BLOCK: tl.constexpr,
    HALF_BLOCK: tl.constexpr,
    TAIL_BLOCK: tl.constexpr,
    NEOX: tl.constexpr,
    IN_PLACE: tl.constexpr,
):
    """Program ``(token, block)``: rotate one block of heads of the query (the first blocks) or
    of the key (the others) of one token. In place, the outputs are the inputs; otherwise new
    contiguous tensors."""
    token = tl.program_id(0).to(tl.int64)
    block = tl.program_id(1)
    QUERY_BLOCKS: tl.constexpr = (QUERY_HEADS + HEADS_BLOCK - 1) // HEADS_BLOCK

    position = tl.load(positions_ptr + token * positions_stride).to(tl.int64)
    position_ok = (position >= 0) & (position < max_position)
    cos_sin_row = cos_sin_ptr + tl.where(position_ok, position, 0) * cos_sin_stride
    if block < QUERY_BLOCKS:
        if IN_PLACE:
            query_out_row = query_out_ptr + token * query_token_stride
        else:  # a new contiguous tensor
            query_out_row = query_out_ptr + token * (QUERY_HEADS * HEAD_SIZE)
        rotate_heads(
            query_ptr + token * query_token_stride,
            query_head_stride,
            query_out_row,
            block * HEADS_BLOCK,
            cos_sin_row,
            position_ok,
            QUERY_HEADS,
            HEAD_SIZE,
            ROTARY_DIM,
            HEADS_BLOCK,
            HALF_BLOCK,
            TAIL_BLOCK,
            NEOX,
            IN_PLACE,
        )
    elif KEY_HEADS > 0:
        if IN_PLACE:
            key_out_row = key_out_ptr + token * key_token_stride
        else:
            key_out_row = key_out_ptr + token * (KEY_HEADS * HEAD_SIZE)
        rotate_heads(
            key_ptr + token * key_token_stride,
            key_head_stride,
            key_out_row,
            (block - QUERY_BLOCKS) * HEADS_BLOCK,
            cos_sin_row,
            position_ok,
            KEY_HEADS,
            HEAD_SIZE,
            ROTARY_DIM,
            HEADS_BLOCK,
            HALF_BLOCK,
            TAIL_BLOCK,
            NEOX,
            IN_PLACE,
        )


# -- layouts --------------------------------------------------------------------------------------


def _token_stride(t: Tensor, lead: int) -> int | torch.SymInt | None:
    """The stride of one index over ``t``'s first ``lead`` dimensions (the tokens), or ``None``
    when they do not collapse into one. Size-1 dimensions never step."""
    if lead == 1:
        return t.stride(0)
    stepping = [i for i in range(lead) if t.shape[i] != 1]
    for outer, inner in itertools.pairwise(stepping):
        if t.stride(outer) != t.stride(inner) * t.shape[inner]:
            return None
    return t.stride(stepping[-1]) if stepping else t.stride(lead - 1)


def _geometry(
    t: Tensor, lead: int, head_size: int
) -> tuple[int | torch.SymInt, int | torch.SymInt | None, int | torch.SymInt]:
    """``(heads, token_stride, head_stride)`` of a query or key of the op's shapes (for
    positions of ``lead`` dimensions); ``token_stride`` is ``None`` when the token dimensions do
    not collapse into one."""
    if t.dim() == lead + 2:  # [*P, heads, head_size]
        return t.shape[-2], _token_stride(t, lead), t.stride(-2)
    return t.shape[-1] // head_size, _token_stride(t, lead), head_size  # [*P, heads * head_size]


def _kernel_can_rotate(t: Tensor, positions: Tensor, head_size: int) -> bool:
    """Whether ``t`` has the op's shapes and a layout the kernel reads and writes: the last
    dimension contiguous, tokens that collapse into one index, heads and tokens apart."""
    lead = positions.dim()
    if t.dim() not in (lead + 1, lead + 2) or tuple(t.shape[:lead]) != tuple(positions.shape):
        return False
    if t.stride(-1) != 1:
        return False
    if t.dim() == lead + 2 and t.shape[-1] != head_size:
        return False
    if t.dim() == lead + 1 and t.shape[-1] % head_size != 0:
        return False
    heads, token_stride, head_stride = _geometry(t, lead, head_size)
    if heads != 1 and head_stride < head_size:  # heads overlap
        return False
    return token_stride is not None and bool(token_stride >= (heads - 1) * head_stride + head_size)


# -- supports_args ------------------------------------------------------------------------------


def rotary_embedding_supports_args(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox_style: bool,
    rotary_dim: int | None = None,
) -> bool:
    """Whether :func:`rotary_kernel` takes these arguments (the module docstring lists them)."""
    try:
        if not (
            positions.dtype in POSITION_DTYPES
            and positions.dim() >= 1
            and query.dtype in FLOAT_DTYPES
            and on_platform_device(query)
            and cos_sin_cache.dtype in FLOAT_DTYPES
            and cos_sin_cache.dim() == 2
            and on_device_of(positions, query)
            and on_device_of(cos_sin_cache, query)
            and bool(head_size > 0)
        ):
            return False
        width = cos_sin_cache.shape[1]
        if not (
            bool(width % 2 == 0)
            and bool(0 < width <= head_size)
            and (rotary_dim is None or bool(rotary_dim == width))
            and bool(cos_sin_cache.stride(1) == 1)
        ):
            return False
        return _kernel_can_rotate(query, positions, head_size) and (
            key is None
            or (
                key.dtype in FLOAT_DTYPES
                and on_device_of(key, query)
                and _kernel_can_rotate(key, positions, head_size)
            )
        )
    except NOT_ARGUMENTS:  # not tensors, a 0-dim x, ...: not ours
        return False


# -- launching ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RotaryLaunch:
    """How a kernel set launches :func:`rotary_kernel` on its hardware.

    A program's tile is ``HEADS_BLOCK x HALF_BLOCK`` pairs, at most :attr:`tile_pairs`; it gets
    ``tile / (lanes_per_warp * elements_per_lane)`` warps (at least one, at most
    :attr:`max_warps`), so each lane holds ``elements_per_lane`` values of each half.
    """

    lanes_per_warp: int
    """Lanes of a warp (NVIDIA: 32; AMD CDNA: 64-wide wavefronts; Intel: the sub-group size)."""
    elements_per_lane: int = 8
    """Values of each half a lane holds: 8 bf16 values are one 16-byte vector."""
    max_warps: int = 8
    tile_pairs: int = 2048
    """Most pairs a program rotates per chunk (a power of two)."""
    options: Callable[[int], Mapping[str, Any]] | None = None
    """The launch options other than the grid for ``num_warps`` warps (``None``: only
    ``num_warps``); for backends with options of their own (Intel's sub-group size)."""

    def __post_init__(self) -> None:
        for name in ("lanes_per_warp", "elements_per_lane", "max_warps", "tile_pairs"):
            value = getattr(self, name)
            if type(value) is not int or value < 1 or value & (value - 1):
                raise ValueError(f"RotaryLaunch.{name} must be a power of two >= 1, got {value!r}")

    def num_warps(self, tile: int) -> int:
        """Warps of a program of ``tile`` pairs."""
        return max(1, min(self.max_warps, tile // (self.lanes_per_warp * self.elements_per_lane)))

    def launch_options(self, tile: int) -> Mapping[str, Any]:
        """Everything but the grid and the arguments, for a program of ``tile`` pairs."""
        num_warps = self.num_warps(tile)
        if self.options is None:
            return {"num_warps": num_warps}
        return self.options(num_warps)


_Plan = tuple[int, BoundLauncher]
"""(programs per token: blocks of query heads, then of key heads; the bound launch)."""

_Geometry = tuple[int, int, int, int, bool, bool]
"""(query heads, key heads, head size, rotary dim, NeoX style, in place): what the constexprs
and the launch options depend on."""


def _make_plan(launcher: KernelLauncher, launch: RotaryLaunch, geometry: _Geometry) -> _Plan:
    """Tiles, constexprs and launch options of one geometry of heads, bound once."""
    query_heads, key_heads, head_size, rotary_dim, neox, in_place = geometry
    tile_pairs = launch.tile_pairs
    half_block = min(_power_of_two_at_least(rotary_dim // 2), tile_pairs)
    heads_block = min(_power_of_two_at_least(max(query_heads, key_heads)), tile_pairs // half_block)
    tail_block = min(
        _power_of_two_at_least(max(head_size - rotary_dim, 1)), 2 * tile_pairs // heads_block
    )
    query_blocks = (query_heads + heads_block - 1) // heads_block
    key_blocks = (key_heads + heads_block - 1) // heads_block
    bound = launcher.bind(
        query_heads,
        key_heads,
        head_size,
        rotary_dim,
        heads_block,
        half_block,
        tail_block,
        neox,
        in_place,
        **launch.launch_options(heads_block * half_block),
    )
    return query_blocks + key_blocks, bound


# -- operators and providers ----------------------------------------------------------------------


def _new_outputs(query: Tensor, key: Tensor | None) -> list[Tensor]:
    outputs = [torch.empty_like(query, memory_format=torch.contiguous_format)]
    if key is not None:
        outputs.append(torch.empty_like(key, memory_format=torch.contiguous_format))
    return outputs


def _new_outputs_like(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox_style: bool,
    rotary_dim: int | None = None,
) -> list[Tensor]:
    """Fake kernel of the out-of-place operator."""
    return _new_outputs(query, key)


def _writes_its_arguments_only(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox_style: bool,
    rotary_dim: int | None = None,
) -> None:
    """Fake kernel of the in-place operator: it returns nothing and allocates nothing."""


class RotaryProviders:
    """A kernel set's ``rotary_embedding`` operators and providers, on :func:`rotary_kernel`.

    It defines ``torch.ops.<namespace>.rotary_embedding`` (out of place, returning
    ``[query_out]`` or ``[query_out, key_out]``: a schema cannot say ``(Tensor, Tensor?)``) and
    ``torch.ops.<namespace>.rotary_embedding_inplace`` (mutating ``query`` and ``key``), which the
    providers call while :func:`~ir_triton.tracing`; :meth:`register` registers the providers.
    Each kernel set has its own launcher (its own compiled-kernel cache).
    """

    def __init__(self, namespace: str, launch: RotaryLaunch) -> None:
        self.launch = launch
        self.launcher = KernelLauncher(rotary_kernel)
        self.plans: dict[_Geometry, _Plan] = {}
        """Bound launches by geometry of heads (their constexprs and options fixed, made once)."""
        rotate = self.rotate

        def traced_op(
            positions: Tensor,
            query: Tensor,
            key: Tensor | None,
            head_size: int,
            cos_sin_cache: Tensor,
            is_neox_style: bool,
            rotary_dim: int | None = None,
        ) -> list[Tensor]:
            outputs = _new_outputs(query, key)
            key_out = outputs[1] if key is not None else None
            rotate(
                positions, query, key, head_size, cos_sin_cache, is_neox_style, outputs[0],
                key_out, True,
            )  # fmt: skip
            return outputs

        def traced_inplace_op(
            positions: Tensor,
            query: Tensor,
            key: Tensor | None,
            head_size: int,
            cos_sin_cache: Tensor,
            is_neox_style: bool,
            rotary_dim: int | None = None,
        ) -> None:
            rotate(positions, query, key, head_size, cos_sin_cache, is_neox_style, query, key, True)

        self.op = define_kernel_op(
            f"{namespace}::rotary_embedding", traced_op, fake=_new_outputs_like
        )
        self.inplace_op = define_kernel_op(
            f"{namespace}::rotary_embedding_inplace",
            traced_inplace_op,
            mutates_args=("query", "key"),
            fake=_writes_its_arguments_only,
        )

    def rotate(
        self,
        positions: Tensor,
        query: Tensor,
        key: Tensor | None,
        head_size: int,
        cos_sin_cache: Tensor,
        is_neox_style: bool,
        query_out: Tensor,
        key_out: Tensor | None,
        traced: bool,
    ) -> None:
        """Rotate ``query`` and ``key`` into ``query_out`` and ``key_out``: the inputs
        themselves (in place) or new contiguous tensors (the unrotated elements copied). The
        arguments must be ones that :func:`rotary_embedding_supports_args` accepts (checked
        there, once, not here on every launch). ``traced`` launches the way ``torch.compile``
        traces (inside an operator); symbolic sizes are specialized (one graph per geometry)."""
        n_tokens = positions.numel()
        if n_tokens == 0:
            return
        lead = positions.dim()
        query_heads, query_token_stride, query_head_stride = _geometry(query, lead, head_size)
        key_heads, key_token_stride, key_head_stride = (
            _geometry(key, lead, head_size) if key is not None else (0, 0, 0)
        )
        geometry = (
            int(query_heads),
            int(key_heads),
            int(head_size),
            int(cos_sin_cache.shape[1]),
            bool(is_neox_style),
            query_out is query,
        )
        plan = self.plans.get(geometry)
        if plan is None:
            plan = self.plans[geometry] = _make_plan(self.launcher, self.launch, geometry)
        blocks, bound = plan
        if lead != 1:  # a view unless the token dimensions do not collapse
            positions = positions.reshape(-1)
        (bound.traced if traced else bound.launch)(
            (n_tokens, blocks),
            positions,
            positions.stride(0),
            cos_sin_cache,
            cos_sin_cache.stride(0),
            cos_sin_cache.shape[0],
            query,
            query_token_stride,
            query_head_stride,
            query_out,
            key,
            key_token_stride,
            key_head_stride,
            key_out,
        )

    def functional(
        self,
        positions: Tensor,
        query: Tensor,
        key: Tensor | None,
        head_size: int,
        cos_sin_cache: Tensor,
        is_neox_style: bool,
        rotary_dim: int | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Out of place: what the functional overload runs (no copies of the inputs)."""
        if tracing():
            outputs: list[Tensor] = self.op(
                positions, query, key, head_size, cos_sin_cache, is_neox_style, rotary_dim
            )
        else:
            outputs = _new_outputs(query, key)
            key_out = outputs[1] if key is not None else None
            self.rotate(
                positions, query, key, head_size, cos_sin_cache, is_neox_style, outputs[0],
                key_out, False,
            )  # fmt: skip
        return outputs[0], (outputs[1] if key is not None else None)

    def inplace(
        self,
        positions: Tensor,
        query: Tensor,
        key: Tensor | None,
        head_size: int,
        cos_sin_cache: Tensor,
        is_neox_style: bool,
        rotary_dim: int | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """In place (``maybe_inplace``): the rotated elements written back into ``query`` and
        ``key``, the others untouched. When both are one buffer, which cannot hold both results,
        it computes out of place (``maybe_inplace`` allows that); views of one buffer that
        overlap otherwise are the caller's error, as for any in-place op."""
        if tracing():
            self.inplace_op(
                positions, query, key, head_size, cos_sin_cache, is_neox_style, rotary_dim
            )
            return query, key
        if key is not None and key.data_ptr() == query.data_ptr():
            return self.functional(
                positions, query, key, head_size, cos_sin_cache, is_neox_style, rotary_dim
            )
        self.rotate(
            positions, query, key, head_size, cos_sin_cache, is_neox_style, query, key, False
        )
        return query, key

    def register(
        self,
        provider: str,
        supported: Callable[[], bool],
        unsupported_reason: Callable[[], str | None],
    ) -> None:
        """Register :meth:`inplace` (and :meth:`functional` for the functional overload) as
        ``rotary_embedding``'s provider ``provider``."""
        ops.rotary_embedding.register_impl(
            provider,
            supported=supported,
            unsupported_reason=unsupported_reason,
            supports_args=rotary_embedding_supports_args,
            inplace=True,
            functional=self.functional,
        )(self.inplace)
