"""``IrLoweringPass``: replace each IR op node by its selected implementation, traced.

For every IR op node (default overload) of a post-grad graph, the pass binds the node's arguments
(defaults filled in, keyword arguments bound by name), runs the op's dispatch on their fake
values under the op's lowering priority (:mod:`ir_compile.priorities`), traces the selected
implementation on those fake values and inlines the trace in place of the node. IR ops that the
trace calls (a composite op's components under ``unfused``) are lowered the same way, each with
its own priority.

Traces are cached by :class:`~ir_compile.passes.tracing.TraceKey` for the pass run, so a graph
of many identical layers traces each kind of node once. The cache lives for one graph only:
tracing may add guards to the graph's shape environment, which another compile would not have.

Nodes the pass cannot lower (no fake values, an implementation that does not trace, a
``maybe_inplace`` call that AOTAutograd functionalized) stay as they are, run eagerly through
Inductor's fallback, and are named in a warning.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.fx import Graph, Node

from ir_compile.fx_utils import (
    DEFAULT_OVERLOAD,
    IrCall,
    detect_fake_mode,
    fake_context,
    fake_values,
    getitem_users,
    has_fake_values,
    ir_call,
    ir_op_of,
    run_on_fake_values,
)
from ir_compile.passes.tracing import (
    Trace,
    TraceKey,
    UncacheableArgument,
    inline_trace,
    trace_implementation,
)
from ir_compile.priorities import CompilePriorities

logger = logging.getLogger(__name__)

MAX_NESTING = 8
"""How deep IR ops may call IR ops (composites of composites) before the pass gives up."""


class NotLowerable(Exception):
    """Why one node is left as it is."""


@dataclass
class LoweringResult:
    """What one run of the pass did."""

    selected: dict[str, dict[str, str]] = field(default_factory=dict)
    not_lowered: dict[str, str] = field(default_factory=dict)
    traces: int = 0
    cache_hits: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        counts = Counter(
            f"{op}->{provider}"
            for op, nodes in self.selected.items()
            for provider in nodes.values()
        )
        lowered = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) or "nothing"
        return (
            f"lowered {sum(counts.values())} IR nodes ({lowered}) with {self.traces} traces and "
            f"{self.cache_hits} cache hits in {self.seconds * 1e3:.1f} ms"
        )


class IrLoweringPass:
    """Lowers every IR op node of a graph to the implementation its dispatch selects.

    ``priorities`` says which providers each op is lowered with (default: each op's compile
    priority); ``cache=False`` traces every node on its own (for benchmarks and debugging).
    After a run, :attr:`selected` maps op name -> {node name -> provider}, and :attr:`result`
    holds the rest of what the run did.
    """

    def __init__(self, priorities: CompilePriorities | None = None, *, cache: bool = True) -> None:
        self.priorities = priorities or CompilePriorities()
        self.cache = cache
        self.result = LoweringResult()

    @property
    def selected(self) -> dict[str, dict[str, str]]:
        return self.result.selected

    def __call__(self, graph: Graph) -> None:
        start = time.perf_counter()
        self.result = result = LoweringResult()
        traces: dict[TraceKey, Trace] = {}
        worklist: deque[tuple[Node, int]] = deque()
        for node in graph.nodes:
            if ir_call(node) is not None or _functionalized_ir_call(node):
                worklist.append((node, 0))
        with self.priorities.applied() as scope:
            while worklist:
                node, depth = worklist.popleft()
                call = ir_call(node)
                try:
                    if call is None:
                        raise NotLowerable(
                            "a maybe_inplace call that AOTAutograd functionalized; the "
                            "InplaceFunctionalizationPass retargets these before AOTAutograd"
                        )
                    if call.overload != DEFAULT_OVERLOAD:
                        raise NotLowerable(f"the {call.overload} overload is not lowered")
                    if depth > MAX_NESTING:
                        raise NotLowerable(f"IR ops nested more than {MAX_NESTING} deep")
                    scope.activate(call.op)
                    provider, new_nodes = self._lower(graph, call, traces)
                except NotLowerable as why:
                    result.not_lowered[node.name] = str(why)
                    continue
                result.selected.setdefault(call.op.name, {})[node.name] = provider
                worklist.extend((n, depth + 1) for n in new_nodes if ir_call(n) is not None)
        result.seconds = time.perf_counter() - start
        if result.selected:
            logger.info("IrLoweringPass: %s", result.summary())
        if result.not_lowered:
            logger.warning(
                "IrLoweringPass could not lower %d IR node(s); they run eagerly through "
                "Inductor's fallback: %s",
                len(result.not_lowered),
                "; ".join(f"{name}: {why}" for name, why in result.not_lowered.items()),
            )

    def _lower(
        self, graph: Graph, call: IrCall, traces: dict[TraceKey, Trace]
    ) -> tuple[str, list[Node]]:
        node = call.node
        op = call.op
        try:
            args = call.bound_args()
        except TypeError as e:
            raise NotLowerable(f"its arguments do not bind to {op.name}'s signature: {e}") from e
        if not has_fake_values(args):
            raise NotLowerable("an argument has no fake value")
        fakes: Sequence[Any] = fake_values(args)
        fake_mode = detect_fake_mode(fakes)
        impl = op.dispatch(*fakes)
        outputs = _output_users(node)

        key: TraceKey | None = None
        if self.cache:
            try:
                key = TraceKey.of(call.qualname, call.overload, impl.provider, args, fakes)
            except UncacheableArgument:
                key = None
        trace = traces.get(key) if key is not None else None
        fresh = trace is None
        if trace is None:
            try:
                trace = trace_implementation(impl, fakes, fake_mode)
            except Exception as e:
                raise NotLowerable(
                    f"tracing provider {impl.provider!r} failed: {type(e).__name__}: {e}"
                ) from e
            self.result.traces += 1
            if key is not None:
                traces[key] = trace
        else:
            self.result.cache_hits += 1
        _check_outputs(node, trace, outputs)

        value, new_nodes = inline_trace(graph, node, trace, args, fresh=fresh)
        value, clones = _unalias_inputs(graph, node, value, args, fake_mode)
        _replace_outputs(node, value, outputs)
        graph.erase_node(node)
        return impl.provider, [*new_nodes, *clones]


def _functionalized_ir_call(node: Node) -> bool:
    """An ``auto_functionalized`` node wrapping an IR op's ``maybe_inplace``."""
    if node.op != "call_function" or not node.args:
        return False
    name = getattr(node.target, "__name__", "")
    if name not in ("auto_functionalized", "auto_functionalized_v2"):
        return False
    return ir_op_of(node.args[0]) is not None


def _output_users(node: Node) -> dict[int, list[Node]] | None:
    """How the node's outputs are used: ``None`` for a single output, else getitem users."""
    target = node.target
    assert isinstance(target, torch._ops.OpOverload)
    if len(target._schema.returns) == 1:
        return None
    users = getitem_users(node)
    if users is None:
        raise NotLowerable("its tuple output is used other than through getitem")
    return users


def _check_outputs(node: Node, trace: Trace, outputs: dict[int, list[Node]] | None) -> None:
    """The trace returns what the op's schema says, and nothing used is missing."""
    (returned,) = trace.graph_module.graph.find_nodes(op="output")
    value = returned.args[0]
    if outputs is None:
        if isinstance(value, (tuple, list)):
            if len(value) != 1:
                raise NotLowerable(f"the implementation returned {len(value)} values, not one")
            value = value[0]
        if not isinstance(value, Node):
            raise NotLowerable(f"the implementation returned {value!r}, not a tensor")
        return
    if not isinstance(value, (tuple, list)):
        raise NotLowerable("the implementation returned one value where the op returns a tuple")
    for index, getitems in outputs.items():
        if index >= len(value):
            raise NotLowerable(f"output {index} is used but the implementation returned fewer")
        if not isinstance(value[index], Node) and any(g.users for g in getitems):
            raise NotLowerable(f"output {index} is used but the implementation returned None")


def _unalias_inputs(
    graph: Graph, node: Node, value: Any, args: Sequence[Any], fake_mode: Any
) -> tuple[Any, list[Node]]:
    """An output that is one of the inputs gets a clone: the op's outputs never alias them."""
    inputs = {a for a in args if isinstance(a, Node)}
    clones: list[Node] = []

    def unalias(out: Any) -> Any:
        if not isinstance(out, Node) or out not in inputs:
            return out
        with graph.inserting_before(node):
            clone = graph.call_function(torch.ops.aten.clone.default, (out,))
        with fake_context(fake_mode):
            clone.meta["val"] = run_on_fake_values(clone)
        clones.append(clone)
        return clone

    if isinstance(value, (tuple, list)):
        return type(value)(unalias(v) for v in value), clones
    return unalias(value), clones


def _replace_outputs(node: Node, value: Any, outputs: dict[int, list[Node]] | None) -> None:
    """Rewire the node's users to the inlined values (shapes checked by :func:`_check_outputs`)."""
    if outputs is None:
        node.replace_all_uses_with(value[0] if isinstance(value, (tuple, list)) else value)
        return
    for index, getitems in outputs.items():
        replacement = value[index]
        for getitem in getitems:
            if isinstance(replacement, Node):
                getitem.replace_all_uses_with(replacement)
            getitem.graph.erase_node(getitem)
