"""Launch choices for row-wise kernels: block width, rows per program, warps.

Row-wise kernels (norms, gated activations, per-token quantization) read each row of a
``[rows, cols]`` problem once, reduce over it in float32 and write it back. Three choices decide
how close they get to the memory-bandwidth limit:

- **block**: the columns one program holds at a time, a power of two. Rows up to
  :attr:`RowTable.max_block` wide sit in registers in one block (one read of the input); wider
  rows loop over chunks of :attr:`RowTable.loop_block` columns.
- **rows per program**: short rows are packed, several per program, until a program covers about
  :attr:`RowTable.min_tile` elements, so a program is not mostly launch overhead.
- **warps**: enough threads that each holds a few 16-byte vectors of the tile. Two sets: for
  launches over many rows bandwidth decides, and fewer warps with more values per thread keep
  more loads in flight per SM and make the cross-warp reduction cheaper; for decode launches (at
  most :attr:`RowTable.decode_rows` rows, a few programs on a GPU of a hundred SMs) latency
  decides, and more warps give each thread fewer instructions between its loads and its stores.

A :class:`RowTable` holds these numbers for one family of GPUs; :data:`NVIDIA_ROW_TABLE` is tuned
for H100-class GPUs (32-thread warps, 64K registers per SM). Kernel sets for other hardware pass
their own table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


def _power_of_two_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


@dataclass(frozen=True)
class RowConfig:
    """How one row-wise launch covers a ``[rows, cols]`` problem."""

    block: int
    """Columns a program handles per pass (a power of two)."""
    rows: int
    """Rows per program (a power of two; 1 for looped rows)."""
    num_warps: int
    looped: bool
    """True when a row is wider than ``block`` and the kernel loops over its chunks."""

    def grid(self, n_rows: int) -> tuple[int]:
        """The launch grid for ``n_rows`` rows: one program per ``rows`` rows."""
        return ((n_rows + self.rows - 1) // self.rows,)


@dataclass(frozen=True)
class RowTable:
    """The numbers behind :func:`row_config` for one family of GPUs."""

    max_block: int
    """Widest row held in one block (power of two); wider rows loop."""
    loop_block: int
    """Chunk width of the looped kernels (power of two)."""
    loop_warps: int
    """Warps of the looped kernels."""
    min_tile: int
    """Short rows are packed until a program covers about this many elements."""
    max_rows: int
    """Most rows packed into one program (power of two)."""
    min_block: int
    """Narrowest block, so even tiny rows get whole vectors (power of two)."""
    warps: tuple[tuple[int, int], ...]
    """``(most tile elements, num_warps)`` pairs, ascending; the last covers ``max_block``."""
    decode_rows: int = 0
    """Launches of at most this many rows (a decode step) take :attr:`decode_warps`: with a
    few programs, latency decides rather than bandwidth. 0: no decode choices."""
    decode_warps: tuple[tuple[int, int], ...] = ()
    """Like :attr:`warps`, for decode launches (empty: the same as :attr:`warps`)."""
    _memo: dict[tuple[int, bool], RowConfig] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    """Answers so far: :meth:`config` is on every launch's host path."""

    def __post_init__(self) -> None:
        for name in ("max_block", "loop_block", "max_rows", "min_block"):
            value = getattr(self, name)
            if not isinstance(value, int) or not _is_power_of_two(value):
                raise ValueError(f"RowTable.{name} must be a power of two, got {value!r}")
        if self.min_tile < 1 or self.loop_warps < 1:
            raise ValueError("RowTable.min_tile and loop_warps must be >= 1")
        for name in ("warps", "decode_warps"):
            pairs = getattr(self, name)
            if (name == "warps" and not pairs) or list(pairs) != sorted(pairs):
                raise ValueError(
                    f"RowTable.{name} must be ascending (warps non-empty), got {pairs}"
                )
            if pairs and pairs[-1][0] < self.max_block:
                raise ValueError(
                    f"RowTable.{name} ends at {pairs[-1][0]} elements; it must cover "
                    f"max_block={self.max_block}"
                )
        rows = self.decode_rows
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise ValueError(f"RowTable.decode_rows must be an int >= 0, got {rows!r}")

    def warps_for(self, tile: int, decode: bool = False) -> int:
        """Warps for a tile of ``tile`` elements (of a decode launch: :attr:`decode_warps`)."""
        pairs = self.decode_warps if decode and self.decode_warps else self.warps
        for most, num_warps in pairs:
            if tile <= most:
                return num_warps
        return pairs[-1][1]

    def is_decode(self, n_rows: int) -> bool:
        """Whether a launch over ``n_rows`` rows takes the decode choices."""
        return n_rows <= self.decode_rows

    def config(self, n_cols: int, n_rows: int | None = None) -> RowConfig:
        """Block, rows per program and warps for rows of ``n_cols`` elements; with ``n_rows``,
        the decode choices for a launch of at most :attr:`decode_rows` rows."""
        decode = n_rows is not None and n_rows <= self.decode_rows
        if type(n_cols) is int:
            found = self._memo.get((n_cols, decode))
            if found is not None:
                return found
        if isinstance(n_cols, bool) or not isinstance(n_cols, int) or n_cols < 1:
            raise ValueError(f"a row-wise kernel needs n_cols >= 1, got {n_cols!r}")
        block = max(self.min_block, _power_of_two_at_least(n_cols))
        if block > self.max_block:
            config = RowConfig(self.loop_block, 1, self.loop_warps, looped=True)
        else:
            rows = max(1, min(self.max_rows, self.min_tile // block))
            config = RowConfig(block, rows, self.warps_for(block * rows, decode), looped=False)
        self._memo[n_cols, decode] = config
        return config


NVIDIA_ROW_TABLE = RowTable(
    # H100: hidden sizes up to 8192 fit one block (8 warps x 32 threads x 32 fp32 values);
    # wider rows loop in 4096-column chunks, which keeps a row's second pass in L2.
    max_block=8192,
    loop_block=4096,
    loop_warps=8,
    # 2048 elements per program: two 16-byte vectors per thread at 4 warps, enough bytes in
    # flight per SM while leaving thousands of programs for large token counts.
    min_tile=2048,
    max_rows=64,
    min_block=16,
    # Bandwidth: 16 (4096) or 32 (8192) values per thread keep 4 x 16-byte loads of bf16 in
    # flight per thread with 4 programs per SM (60 registers at 8192, from ptxas for sm_90),
    # and fewer warps make the cross-warp reduction cheaper. (Measured on H100 with
    # benchmarks/tune_rows.py; it prints the table's choice next to the best.)
    warps=((256, 1), (512, 2), (2048, 4), (4096, 8), (8192, 8)),
    # Decode (a few programs, each one row): latency decides, and more warps give each thread
    # fewer instructions between its loads and its stores.
    decode_rows=64,
    decode_warps=((256, 1), (512, 2), (1024, 4), (2048, 4), (4096, 8), (8192, 16)),
)
"""Row-kernel choices for NVIDIA H100-class GPUs."""


def row_config(
    n_cols: int, table: RowTable = NVIDIA_ROW_TABLE, n_rows: int | None = None
) -> RowConfig:
    """:meth:`RowTable.config` of ``table`` (default: the NVIDIA table)."""
    return table.config(n_cols, n_rows)


ELEMENTWISE_MIN_BLOCK = 256
ELEMENTWISE_MAX_BLOCK = 2048


def elementwise_block(n_cols: int) -> int:
    """The chunk width of a :attr:`RowLaunch.divisor_tiles` launch for rows of ``n_cols >= 1``:
    the largest power of two dividing the width, between :data:`ELEMENTWISE_MIN_BLOCK` and
    :data:`ELEMENTWISE_MAX_BLOCK` (no masked lanes: 5120 = 5 x 1024, 14336 = 7 x 2048), or for
    widths without one, the power of two covering the row, up to the largest."""
    divisor = n_cols & -n_cols  # the largest power of two dividing n_cols
    if divisor >= ELEMENTWISE_MIN_BLOCK:
        return min(ELEMENTWISE_MAX_BLOCK, divisor)
    return min(ELEMENTWISE_MAX_BLOCK, _power_of_two_at_least(n_cols))


def _num_warps_only(config: RowConfig) -> Mapping[str, Any]:
    return {"num_warps": config.num_warps}


@dataclass(frozen=True)
class RowLaunch:
    """How a kernel set launches the shared row-wise kernels on its hardware.

    Kernel bodies that are the same for every vendor (:mod:`ir_triton.kernels.norm`,
    :mod:`~ir_triton.kernels.activation`, :mod:`~ir_triton.kernels.quant`,
    :mod:`~ir_triton.kernels.norm_quant`, :mod:`~ir_triton.kernels.activation_quant`) take
    their tiles from :attr:`table`, their launch options from :attr:`options`, the cache and
    eviction hints of their loads from :attr:`stream`, :attr:`read_once` and :attr:`reused`, and
    whether eager launches use programmatic dependent launch from :attr:`pdl`, how the quantizing
    kernels divide by a scale from :attr:`exact_division` and how the element-wise kernels cut
    rows from :attr:`divisor_tiles`: what differs between GPUs is there, not in the bodies.
    """

    table: RowTable
    """Blocks, rows per program and warps (wavefronts, sub-groups) for the kernel set's GPUs."""
    options: Callable[[RowConfig], Mapping[str, Any]] = _num_warps_only
    """The launch options other than the grid for a launch of ``config`` (default: only
    ``num_warps``); for backends with options of their own (Intel's sub-group size and
    register-file mode)."""
    stream: str = ""
    """``cache_modifier`` of loads that read data for the last time (``""``: none; AMD: ``".cg"``,
    a streaming ``nt`` load on CDNA3/CDNA4)."""
    read_once: str = ""
    """``eviction_policy`` of loads that read data for the last time (``""``: none; NVIDIA:
    ``"evict_first"``, leaving L2 to what is read again)."""
    reused: str = ""
    """``eviction_policy`` of data every program reads, such as a norm's weight (``""``: none;
    NVIDIA: ``"evict_last"``)."""
    pdl: Callable[[], bool] | None = None
    """Whether eager launches use programmatic dependent launch, asked at each launch (the
    kernel set caches its answer); ``None``: never. With it the kernels first wait for the
    previous kernel (their ``USE_PDL`` constexpr, :mod:`ir_triton.pdl`) and launch with
    ``launch_pdl=True``. Launches that ``torch.compile`` traces never use it."""
    exact_division: bool = True
    """How the quantizing kernels divide by a scale: ``True``, ``x / scale`` correctly rounded
    (``div_rn``, what torch computes, so outputs equal native's bit for bit); ``False``, ``x``
    times the scale's reciprocal, rounded once per program (within 1.5 float32 ulps of the
    quotient, so at most one fp8 step away and almost always equal), which saves a division per
    element where the GPU's ``div_rn`` is a slow path. ``benchmarks/division_modes.py`` of
    ir-kernels-cuda measures both."""
    divisor_tiles: bool = False
    """How the element-wise kernels (gated activations, static quantization, the per-tensor
    dynamic one, the fused activation quantization) cut rows: ``False``, the table's row tiles
    (one block covering the row up to ``max_block``, ``loop_block`` chunks beyond); ``True``,
    chunks of the largest power of two dividing the width, 256 to 2048 wide
    (:func:`elementwise_block`), so widths such as 5120 or 14336 have no masked lanes and wide
    rows spread over more programs; rows per program and warps still come from the table."""

    def __post_init__(self) -> None:
        if self.stream not in STREAM_CACHE_MODIFIERS:
            raise ValueError(
                f"RowLaunch.stream must be one of {STREAM_CACHE_MODIFIERS}, got {self.stream!r}"
            )
        for name in ("read_once", "reused"):
            value = getattr(self, name)
            if value not in EVICTION_POLICIES:
                raise ValueError(
                    f"RowLaunch.{name} must be one of {EVICTION_POLICIES}, got {value!r}"
                )
        if not callable(self.options):
            raise TypeError(f"RowLaunch.options must be callable, got {self.options!r}")
        if self.pdl is not None and not callable(self.pdl):
            raise TypeError(f"RowLaunch.pdl must be None or callable, got {self.pdl!r}")
        for name in ("exact_division", "divisor_tiles"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"RowLaunch.{name} must be a bool, got {getattr(self, name)!r}")

    def uses_pdl(self, traced: bool) -> bool:
        """Whether this launch uses programmatic dependent launch (never when traced)."""
        return not traced and self.pdl is not None and self.pdl()

    def launch_options(self, config: RowConfig, pdl: bool) -> dict[str, Any]:
        """:attr:`options` of ``config``, with ``launch_pdl`` when ``pdl``."""
        options = dict(self.options(config))
        if pdl:
            options["launch_pdl"] = True
        return options

    def row_config(self, n_cols: int, n_rows: int | None, traced: bool) -> RowConfig:
        """The table's config of a row-wise kernel (one row's statistic per program row); eager
        launches of at most ``decode_rows`` rows take the decode choices (a traced row count
        may be symbolic: never)."""
        decode = not traced and n_rows is not None and self.table.is_decode(n_rows)
        return self.table.config(n_cols, 1 if decode else None)

    def elementwise_config(self, n_cols: int) -> RowConfig:
        """The tiles of an element-wise kernel over rows of ``n_cols`` (see
        :attr:`divisor_tiles`): a :class:`RowConfig` whose ``block`` is the chunk width
        (``looped`` is unused: the chunks lie along the grid's second axis)."""
        table = self.table
        if not self.divisor_tiles:
            return table.config(n_cols)
        block = elementwise_block(n_cols)
        rows = max(1, min(table.max_rows, table.min_tile // block))
        return RowConfig(block, rows, table.warps_for(block * rows), looped=False)


STREAM_CACHE_MODIFIERS = ("", ".cg")
"""Triton load cache modifiers a :class:`RowLaunch` may name for read-once data."""

EVICTION_POLICIES = ("", "evict_first", "evict_last")
"""Triton load eviction policies a :class:`RowLaunch` may name."""
