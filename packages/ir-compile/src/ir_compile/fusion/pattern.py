"""Patterns over IR op nodes, and the rewrite of each match into one IR op node.

A :class:`Pattern` is a small dataflow graph of calls (IR ops, or an aten op such as ``add``)
whose arguments are the replacement op's parameters (:class:`Param`), results of earlier calls
(:class:`Result`) or literal values. Matching works on the IR op nodes themselves, before any is
lowered, so one pattern serves every provider of every op involved.

A composite op's pattern is read off its composition (:func:`composition_pattern`): the
composition runs once on :class:`Param` placeholders with its components recording their calls.

A match is rewritten only when it is safe: intermediate values that the replacement does not
return are used by the matched calls alone, no argument of the replacement depends on a matched
call (that would be a cycle), and the pattern's constraint accepts the arguments' fake values.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.fx import Graph, Node

from ir_compile.fx_utils import detect_fake_mode, fake_context, fake_value, fake_values
from ir_op import IrOp
from ir_op.composite import Components


class PatternError(ValueError):
    """A composite op whose composition cannot serve as a fusion pattern."""


@dataclass(frozen=True)
class Param:
    """The replacement op's parameter ``name``: binds to whatever the graph passes there."""

    name: str


@dataclass(frozen=True)
class Result:
    """Output ``index`` of call ``call`` (``None``: the call returns one value)."""

    call: int
    index: int | None


Binder = Callable[[Node], Sequence[Any] | None]
"""A node's arguments by position, in the pattern's order, or ``None`` when they do not fit."""


@dataclass(frozen=True)
class Call:
    target: torch._ops.OpOverload
    args: tuple[Any, ...]
    binder: Binder


Constraint = Callable[[Mapping[str, Any]], bool]
"""Takes the fake values bound to the parameters; says whether the rewrite may happen."""


@dataclass(frozen=True)
class Pattern:
    """``calls`` (topologically ordered; the last one anchors the match) computing
    ``results``, which one call of ``replacement`` computes instead."""

    calls: tuple[Call, ...]
    results: tuple[Result, ...]
    replacement: IrOp
    constraint: Constraint


def ir_binder(op: IrOp) -> Binder:
    """Binds an IR op node's arguments with the op's signature (defaults filled in)."""

    def bind(node: Node) -> Sequence[Any] | None:
        try:
            return op.bind_arguments(*node.args, **node.kwargs)
        except TypeError:
            return None

    return bind


class _Recorder:
    """Stands in for a composite op's components while its composition runs on parameters."""

    def __init__(self, op: IrOp) -> None:
        self.op = op
        self.calls: list[Call] = []

    def component(self, component: IrOp) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = component.bind_arguments(*args, **kwargs)
            except TypeError as e:
                raise PatternError(
                    f"composite op {self.op.name!r} calls {component.name!r} with arguments "
                    f"that do not fit its signature: {e}"
                ) from None
            index = len(self.calls)
            self.calls.append(Call(component.torch_op, bound, ir_binder(component)))
            returns = len(component.torch_op._schema.returns)
            if returns == 1:
                return Result(index, None)
            return tuple(Result(index, j) for j in range(returns))

        return record


def composition_pattern(op: IrOp, constraint: Constraint) -> Pattern:
    """The pattern a composite op replaces: its composition, with its components' calls.

    Raises :class:`PatternError` when ``op`` is not composite or its composition does anything
    but pass its parameters and its components' results to its components.
    """
    composition = op.composition
    if composition is None:
        raise PatternError(f"op {op.name!r} is not a composite op; it has no composition")
    recorder = _Recorder(op)
    components = Components(op.name, {c.name: recorder.component(c) for c in op.components})
    params = [Param(name) for name in op.signature.parameter_names]
    try:
        returned = composition.fn(components, *params)
    except PatternError:
        raise
    except Exception as e:
        raise PatternError(
            f"composite op {op.name!r}: its composition does more than call its components "
            f"({type(e).__name__}: {e}), so it has no fusion pattern"
        ) from None
    results = returned if isinstance(returned, tuple) else (returned,)
    if not recorder.calls or not all(isinstance(r, Result) for r in results):
        raise PatternError(
            f"composite op {op.name!r}: its composition must return its components' results, "
            f"got {returned!r}"
        )
    return Pattern(tuple(recorder.calls), tuple(results), op, constraint)


# ---------------------------------------------------------------------------------------------
# Matching


def _same(a: object, b: object) -> bool:
    if isinstance(a, Node) or isinstance(b, Node):
        return a is b
    return type(a) is type(b) and a == b


@dataclass
class Match:
    nodes: dict[int, Node] = field(default_factory=dict)
    bindings: dict[str, Any] = field(default_factory=dict)


def match_at(pattern: Pattern, anchor: Node) -> Match | None:
    """The match of ``pattern`` whose last call is ``anchor``, or ``None``."""
    found = Match()

    def visit(index: int, node: Node) -> bool:
        if index in found.nodes:
            return found.nodes[index] is node
        call = pattern.calls[index]
        if node.op != "call_function" or node.target is not call.target:
            return False
        bound = call.binder(node)
        if bound is None or len(bound) != len(call.args):
            return False
        found.nodes[index] = node
        for want, got in zip(call.args, bound, strict=True):
            if isinstance(want, Param):
                if want.name in found.bindings:
                    if not _same(found.bindings[want.name], got):
                        return False
                else:
                    found.bindings[want.name] = got
            elif isinstance(want, Result):
                producer = got
                if want.index is not None:
                    if not (
                        isinstance(got, Node)
                        and got.target is operator.getitem
                        and got.args[1] == want.index
                    ):
                        return False
                    producer = got.args[0]
                if not isinstance(producer, Node) or not visit(want.call, producer):
                    return False
            elif not _same(want, got):
                return False
        return True

    if not visit(len(pattern.calls) - 1, anchor) or len(found.nodes) != len(pattern.calls):
        return None
    return found


def _slot_nodes(node: Node, index: int | None) -> list[Node]:
    """The nodes carrying one output of ``node``: itself, or its getitems of ``index``."""
    if index is None:
        return [node]
    return [u for u in node.users if u.target is operator.getitem and u.args[1] == index]


def _internal_values_stay_internal(pattern: Pattern, match: Match) -> bool:
    matched = set(match.nodes.values())
    returned = {(r.call, r.index) for r in pattern.results}
    for index, node in match.nodes.items():
        returns = len(pattern.calls[index].target._schema.returns)
        if returns > 1 and any(u.target is not operator.getitem for u in node.users):
            return False
        slots: list[int | None] = [None] if returns == 1 else list(range(returns))
        for slot in slots:
            if (index, slot) in returned:
                continue
            for carrier in _slot_nodes(node, slot):
                if any(user not in matched for user in carrier.users):
                    return False
    return True


def _depends_on(inputs: Sequence[Node], targets: set[Node], position: dict[Node, float]) -> bool:
    """Whether any of ``inputs`` is computed from one of ``targets`` (graph topologically
    sorted; ``position`` gives graph order)."""
    earliest = min(position[t] for t in targets)
    seen: set[Node] = set()
    frontier = [n for n in inputs if position[n] >= earliest]
    while frontier:
        node = frontier.pop()
        if node in targets:
            return True
        if node in seen:
            continue
        seen.add(node)
        frontier.extend(n for n in node.all_input_nodes if position[n] >= earliest)
    return False


def try_rewrite(
    graph: Graph, pattern: Pattern, anchor: Node, position: dict[Node, float]
) -> list[Node] | None:
    """Rewrite the match of ``pattern`` at ``anchor`` if there is a safe one.

    ``position`` is the graph order (the graph topologically sorted); the new nodes get
    positions just before ``anchor``. Returns the nodes carrying the replacement's outputs, or
    ``None`` when nothing changed. Users of a returned value that came before ``anchor`` now
    precede their new producer: the caller sorts the graph before relying on its order again.
    """
    match = match_at(pattern, anchor)
    if match is None or not _internal_values_stay_internal(pattern, match):
        return None
    op = pattern.replacement
    names = op.signature.parameter_names
    parameters = op.signature.python.parameters
    args = tuple(
        match.bindings[name] if name in match.bindings else parameters[name].default
        for name in names
    )
    matched = set(match.nodes.values())
    produced = matched | {u for n in matched for u in n.users if u.target is operator.getitem}
    if _depends_on([a for a in args if isinstance(a, Node)], produced, position):
        return None
    if not pattern.constraint({k: fake_value(v) for k, v in match.bindings.items()}):
        return None

    fakes = fake_values(args)
    with fake_context(detect_fake_mode(fakes)):
        value = op.torch_op(*fakes)
    with graph.inserting_before(anchor):
        fused = graph.call_function(op.torch_op, args)
    fused.meta["val"] = value
    if "stack_trace" in anchor.meta:
        fused.meta["stack_trace"] = anchor.meta["stack_trace"]
    position[fused] = position[anchor] - 0.5
    outputs: list[Node] = [fused]
    if len(pattern.results) > 1:
        outputs = []
        for i in range(len(pattern.results)):
            with graph.inserting_before(anchor):
                item = graph.call_function(operator.getitem, (fused, i))
            item.meta["val"] = value[i]
            position[item] = position[anchor] - 0.5 + (i + 1) / (2 * len(pattern.results) + 2)
            outputs.append(item)
    for result, output in zip(pattern.results, outputs, strict=True):
        for carrier in _slot_nodes(match.nodes[result.call], result.index):
            carrier.replace_all_uses_with(output)
    for index in sorted(match.nodes, reverse=True):
        node = match.nodes[index]
        for user in list(node.users):
            if not user.users:
                graph.erase_node(user)
        if not node.users:
            graph.erase_node(node)
    return outputs


def x_and_weight_dtypes_agree(bindings: Mapping[str, Any]) -> bool:
    """Fused kernels take the weight in the activation's dtype: no fusion otherwise."""
    x, weight = bindings.get("x"), bindings.get("weight")
    if isinstance(x, torch.Tensor) and isinstance(weight, torch.Tensor):
        return x.dtype == weight.dtype
    return True
