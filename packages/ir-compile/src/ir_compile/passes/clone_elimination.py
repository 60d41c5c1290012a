"""``CloneEliminationPass``: remove the clones the lowered graph does not need.

Two kinds of clones reach it. In the functional graph an IR op's in-place provider is reached
through its functional form, which clones each activation and writes the clone; and models,
decompositions and traced implementations clone values that nothing writes afterwards. A clone
``c = clone(x)`` is removed by replacing ``c`` by ``x``; when a rule below forbids that, the clone
stays and :attr:`CloneEliminationPass.kept` names the rule.

**Written clones** (some node writes ``c`` or a view of it), replaced unless:

- ``layout``: ``c``'s shape, strides, dtype or device differ from ``x``'s (or its conjugate or
  negative bit: the clone then computes), or it was asked for a memory format: the
  implementation may need the clone's layout.
- ``undonated graph input``: ``x`` (or the tensor it is a view of) is an input of the graph that
  was not donated (see :class:`~ir_compile.passes.inplace.InplaceFunctionalizationPass`): the
  caller still owns it. Inputs of a nested region are never donated, nor are constants.
- ``read after write``: ``x``, or a tensor that may overlap it in memory, is used at or after the
  first write to ``c``, so it would read the written values (or share memory with the writer).
- ``snapshot returned``: ``c`` (or a view of it) is returned by the graph while ``x`` (or a
  tensor overlapping it) is a graph input or is returned too: the outputs would alias.

**Read-only clones** (nothing writes ``c`` or a view of it; as vLLM's pass removes them, under
rules that keep the graph's meaning): ``c`` and ``x`` then hold the same values for as long as
nobody writes ``x``, so readers of ``c`` may read ``x``, unless:

- ``layout``: as above (a reader may depend on the clone's layout).
- ``unknown writer``: a user of ``c`` (or a view of it) is a node whose writes the pass cannot
  read off a schema (a higher-order operator other than the functional ones, a Python
  callable), so ``c`` may be written after all.
- ``source written later``: a node writes ``x``, or memory that may overlap it, after the clone,
  and ``c`` (or a view of it) is used at or after that write: the reader would see the new values
  instead of the snapshot. (Writes before the clone, or after the last use of ``c``, are fine.)
  A node whose writes are unknown (see above) counts as writing each tensor it takes.
- ``snapshot returned``: ``c`` (or a view of it) is returned while a tensor sharing ``x``'s
  storage is a graph input, a constant, or returned too: the caller would get an alias of its
  input, of a parameter or of another output where it was promised a tensor of its own.
- ``unaligned view``: ``x`` is a view starting at an offset that is not a known multiple of
  16 bytes: the clone is a fresh, aligned allocation, which kernels reading it may rely on.

Removal happens in graph order, and each removal is seen by the next decision (its readers then
read ``x``, its writers write ``x``: a clone whose written clone was removed is decided as a
written clone), so chains ``clone(clone(x))`` collapse to ``x`` and several clones of one ``x`` go
one by one as long as the rules hold for each. Written clones are decided first: letting an
in-place kernel write its input saves a copy that Inductor cannot fuse away, whereas a read-only
clone that stays is often fused into its readers.

Overlap is decided from the fake values: views of one storage overlap unless both have static
row layouts whose column ranges are disjoint (as the query, key and value slices of one fused
projection are).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Collection

import torch
from torch.fx import Graph, Node
from torch.fx.experimental.symbolic_shapes import statically_known_true, sym_eq

from ir_compile.fx_utils import (
    fake_value,
    node_storage,
    output_nodes,
    position_of,
    written_arguments,
)

logger = logging.getLogger(__name__)

_PRESERVE_FORMATS = (None, torch.preserve_format)

_ALIGNMENT_BYTES = 16
"""The alignment a fresh allocation has and that a view must keep to stand in for a clone
(Inductor's own alignment assumption for tensors, ``GPU_ALIGN_BYTES``)."""

_FUNCTIONAL_HIGHER_ORDER_OPS = frozenset(
    {
        "auto_functionalized",
        "auto_functionalized_v2",
        "triton_kernel_wrapper_functional",
        "invoke_subgraph",
    }
)
"""Higher-order operators that never write their tensor arguments (functional forms)."""


class _Aliases:
    """Which nodes share storage, as eliminations merge storages together."""

    def __init__(self, graph: Graph) -> None:
        self._parent: dict[int, int] = {}
        self._members: dict[int, list[Node]] = {}
        for node in graph.nodes:
            key = node_storage(node)
            if key is not None:
                self._members.setdefault(key, []).append(node)

    def root(self, key: int) -> int:
        while key in self._parent:
            key = self._parent[key]
        return key

    def of(self, node: Node) -> int | None:
        key = node_storage(node)
        return None if key is None else self.root(key)

    def members(self, node: Node) -> list[Node]:
        """Every live node sharing ``node``'s storage (``node`` included)."""
        key = self.of(node)
        if key is None:
            return [node]
        return [n for n in self._members.get(key, []) if not n._erased]

    def merge(self, into: Node, other: Node) -> None:
        a, b = self.of(into), self.of(other)
        if a is None or b is None or a == b:
            return
        self._parent[b] = a
        self._members.setdefault(a, []).extend(self._members.pop(b, []))


def _is_clone(node: Node) -> bool:
    return (
        node.op == "call_function"
        and node.target is torch.ops.aten.clone.default
        and isinstance(node.args[0], Node)
    )


def _same_layout(a: object, b: object) -> bool:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return False
    if a.layout != torch.strided or b.layout != torch.strided:
        return False
    return bool(
        statically_known_true(sym_eq(a.shape, b.shape))
        and statically_known_true(sym_eq(a.stride(), b.stride()))
        and a.dtype == b.dtype
        and a.device == b.device
        and a.is_conj() == b.is_conj()  # a clone resolving a lazy conjugate or negation
        and a.is_neg() == b.is_neg()  # is a computation, not a copy
    )


def _static_ints(values: object) -> list[int] | None:
    out: list[int] = []
    for v in values:  # type: ignore[attr-defined]
        if not isinstance(v, int):
            return None
        out.append(v)
    return out


def _row_span(t: torch.Tensor) -> tuple[int, int, int, int] | None:
    """``(rows, row stride, first column, columns)`` for a static tensor whose rows are each one
    contiguous block, else ``None``."""
    shape, strides = _static_ints(t.shape), _static_ints(t.stride())
    offset = t.storage_offset()
    if shape is None or strides is None or not isinstance(offset, int) or not shape:
        return None
    if len(shape) == 1:
        return (1, shape[0], offset, shape[0]) if shape[0] <= 1 or strides[0] == 1 else None
    width = 1
    for size, stride in zip(reversed(shape[1:]), reversed(strides[1:]), strict=True):
        if size != 1 and stride != width:
            return None
        width *= size
    rows, row_stride = shape[0], strides[0]
    if rows > 1 and row_stride < width:
        return None
    return rows, row_stride, offset, width


def may_overlap(a: object, b: object) -> bool:
    """Whether two tensors of one storage may share an element (``True`` when unsure).

    Each tensor whose rows are contiguous blocks covers, in element offsets, ``rows`` blocks of
    ``width`` elements, ``row stride`` apart. Disjoint address ranges never overlap; with equal
    row strides, two such tensors overlap only if their row ranges and their column ranges both
    do (a query slice and a value slice of one projection do not).
    """
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return False
    if a.numel() == 0 or b.numel() == 0:
        return False
    span_a, span_b = _row_span(a), _row_span(b)
    if span_a is None or span_b is None:
        return True
    rows_a, stride_a, offset_a, width_a = span_a
    rows_b, stride_b, offset_b, width_b = span_b
    end_a = offset_a + (rows_a - 1) * stride_a + width_a
    end_b = offset_b + (rows_b - 1) * stride_b + width_b
    if end_a <= offset_b or end_b <= offset_a:
        return False
    if stride_a != stride_b:
        return True
    stride = stride_a
    column_a, column_b = offset_a % stride, offset_b % stride
    if column_a + width_a > stride or column_b + width_b > stride:
        return True
    row_a, row_b = offset_a // stride, offset_b // stride
    rows_meet = row_a < row_b + rows_b and row_b < row_a + rows_a
    columns_meet = column_a < column_b + width_b and column_b < column_a + width_a
    return rows_meet and columns_meet


class CloneEliminationPass:
    """Removes the clones in-place implementations write, where the rules above allow it.

    Call with the graph and the placeholders its caller donated. After a run :attr:`removed`
    lists the removed clones and :attr:`kept` maps each kept clone to its rule.
    """

    def __init__(self) -> None:
        self.removed: list[str] = []
        self.kept: dict[str, str] = {}

    def __call__(self, graph: Graph, donated_inputs: Collection[Node] = ()) -> None:
        self.removed, self.kept = [], {}
        aliases = _Aliases(graph)
        position = position_of(graph)  # erasing nodes keeps the others' relative order
        read_only: list[Node] = []
        for clone in [n for n in graph.nodes if _is_clone(n)]:
            source = clone.args[0]
            assert isinstance(source, Node)
            first_write = _first_write(clone, aliases, position)
            if first_write is None:
                read_only.append(clone)
                continue
            reason = self._keep_reason(
                graph, clone, source, first_write, aliases, position, donated_inputs
            )
            if reason is not None:
                self.kept[clone.name] = reason
                continue
            self._remove(graph, clone, source, aliases)
        for clone in read_only:
            source = clone.args[0]  # read now: an earlier removal may have replaced it
            assert isinstance(source, Node)
            # A removed written clone of this one made its writer write this one.
            first_write = _first_write(clone, aliases, position)
            if first_write is None:
                reason = self._read_only_keep_reason(graph, clone, source, aliases, position)
            else:
                reason = self._keep_reason(
                    graph, clone, source, first_write, aliases, position, donated_inputs
                )
            if reason is not None:
                self.kept[clone.name] = reason
                continue
            self._remove(graph, clone, source, aliases)
        if self.removed or self.kept:
            logger.info(
                "CloneEliminationPass: removed %d clone(s), kept %d (%s)",
                len(self.removed),
                len(self.kept),
                ", ".join(f"{k}: {v}" for k, v in self.kept.items()) or "none",
            )

    def _remove(self, graph: Graph, clone: Node, source: Node, aliases: _Aliases) -> None:
        clone.replace_all_uses_with(source)
        aliases.merge(source, clone)
        graph.erase_node(clone)
        self.removed.append(clone.name)

    @staticmethod
    def _read_only_keep_reason(
        graph: Graph,
        clone: Node,
        source: Node,
        aliases: _Aliases,
        position: dict[Node, int],
    ) -> str | None:
        """Why a clone that no node writes (by schema) must stay, or ``None``."""
        if clone.kwargs.get("memory_format") not in _PRESERVE_FORMATS or not _same_layout(
            fake_value(clone), fake_value(source)
        ):
            return "layout"
        clone_members = aliases.members(clone)
        readers = [user for member in clone_members for user in member.users]
        if any(_writes_unknown(user) for user in readers):
            return "unknown writer"
        source_value = fake_value(source)
        overlapping = [
            n
            for n in aliases.members(source)
            if n is source or may_overlap(fake_value(n), source_value)
        ]
        clone_at = position[clone]
        writes = [
            position[user]
            for alias in overlapping
            for user in alias.users
            if position[user] > clone_at
            and (alias in written_arguments(user) or _writes_unknown(user))
        ]
        if writes:
            first = min(writes)
            if any(position[user] >= first for user in readers):
                return "source written later"
        returned = output_nodes(graph)
        if any(n in returned for n in clone_members):
            for node in aliases.members(source):
                if node.op in ("placeholder", "get_attr") or node in returned:
                    return "snapshot returned"
        if not _aligned(source_value):
            return "unaligned view"
        return None

    @staticmethod
    def _keep_reason(
        graph: Graph,
        clone: Node,
        source: Node,
        first_write: Node,
        aliases: _Aliases,
        position: dict[Node, int],
        donated_inputs: Collection[Node],
    ) -> str | None:
        if clone.kwargs.get("memory_format") not in _PRESERVE_FORMATS or not _same_layout(
            fake_value(clone), fake_value(source)
        ):
            return "layout"
        source_value = fake_value(source)
        overlapping = [
            n
            for n in aliases.members(source)
            if n is source or may_overlap(fake_value(n), source_value)
        ]
        for node in aliases.members(source):
            if node.op == "get_attr":
                return "constant"
            if node.op == "placeholder" and node not in donated_inputs:
                return "undonated graph input"
        write_at = position[first_write]
        for alias in overlapping:
            for user in alias.users:
                if user is not clone and position[user] >= write_at:
                    return "read after write"
        returned = output_nodes(graph)
        clone_returned = any(n in returned for n in aliases.members(clone))
        source_exposed = any(n in returned or n.op == "placeholder" for n in overlapping)
        if clone_returned and source_exposed:
            return "snapshot returned"
        return None


def _writes_unknown(node: Node) -> bool:
    """Whether ``node`` may write its tensor arguments in ways no schema states."""
    if node.op in ("placeholder", "get_attr", "output"):
        return False
    if node.op != "call_function":
        return True  # call_module / call_method: not in Inductor's graphs, unknown
    target = node.target
    if isinstance(target, torch._ops.OpOverload) or target is operator.getitem:
        return False
    if isinstance(target, torch._ops.HigherOrderOperator):
        return target.name() not in _FUNCTIONAL_HIGHER_ORDER_OPS  # type: ignore[no-untyped-call]
    return True


def _aligned(value: object) -> bool:
    """Whether ``value`` starts at a known multiple of :data:`_ALIGNMENT_BYTES` in its storage."""
    if not isinstance(value, torch.Tensor):
        return False
    offset = value.storage_offset()
    if not isinstance(offset, int):
        return bool(statically_known_true(offset == 0))
    return (offset * value.element_size()) % _ALIGNMENT_BYTES == 0


def _first_write(clone: Node, aliases: _Aliases, position: dict[Node, int]) -> Node | None:
    """The first node (graph order) that writes ``clone`` or a view of it."""
    members = set(aliases.members(clone))
    writers = [
        user
        for member in members
        for user in member.users
        if any(arg in members for arg in written_arguments(user))
    ]
    return min(writers, key=position.__getitem__, default=None)
