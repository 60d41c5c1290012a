"""Tracing a provider's implementation on a node's fake inputs, and inlining the trace.

The lowering pass replaces an IR op node by what the selected implementation does, as aten ops
(Inductor's decompositions applied, as for any graph it compiles) and whatever operators the
implementation calls (a kernel set's own, or other IR ops, which are lowered in turn). The trace
is ``make_fx`` of the implementation on the node's fake values, so it follows the graph's
symbolic shapes; tensors and symbolic scalars become the trace's inputs, every other argument
(an epsilon, a dtype, ``None``) is baked in.

:class:`TraceKey` says when two nodes would trace to the same graph: same op, overload and
provider, and arguments equal in everything a trace can depend on (tensor metadata including
strides and storage offset, symbolic sizes by expression, constants by value, and which
arguments share storage). One trace then serves every such node.

A reused trace is copied without running its nodes again: the copies share the first copy's
fake values, which have the right metadata, and get their own storage identities
(``fx_utils.STORAGE_META_KEY``: a view of an input gets the input's, any other storage a new
one). Inductor recomputes the fake values of new nodes right after the post-grad passes
(``FakeTensorUpdater``), so only ir-compile's own passes read them in between, through
``fx_utils.node_storage``. Recomputing them here instead would double the cost of a reuse.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import Graph, GraphModule, Node

from ir_compile.fx_utils import STORAGE_META_KEY, fake_context, node_storage, storage_key
from ir_op import IrOpImpl, enable_torch_wrap

_SYMBOLIC = (torch.SymInt, torch.SymFloat, torch.SymBool)
_PLAIN_CONSTANTS = (
    type(None),
    bool,
    int,
    str,
    torch.dtype,
    torch.device,
    torch.layout,
    torch.memory_format,
)

_constant_names = itertools.count()
_copied_storages = itertools.count(1)  # negative identities: never a real storage's


class UncacheableArgument(Exception):
    """An argument whose identity a cache key cannot express (the node is traced on its own)."""


def _expr(value: object) -> str:
    """A size, stride or symbolic scalar as text: equal text means equal value in the graph."""
    if isinstance(value, _SYMBOLIC):
        return str(value.node.expr)
    return str(value)


def _argument_key(value: object) -> tuple[Any, ...]:
    if isinstance(value, torch.Tensor):
        strided = value.layout == torch.strided
        return (
            "tensor",
            value.dtype,
            value.device,
            value.layout,
            value.requires_grad,
            tuple(_expr(s) for s in value.shape),
            tuple(_expr(s) for s in value.stride()) if strided else None,
            _expr(value.storage_offset()) if strided else None,
        )
    if isinstance(value, _SYMBOLIC):
        return ("symbolic", type(value).__name__, _expr(value))
    if isinstance(value, float):
        # repr tells -0.0 from 0.0; NaN has no identity by equality, but one text
        return ("float", "nan" if math.isnan(value) else repr(value))
    if isinstance(value, _PLAIN_CONSTANTS):
        return (type(value).__name__, value)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_argument_key(v) for v in value))
    raise UncacheableArgument(f"{type(value).__name__} argument")


@dataclass(frozen=True)
class TraceKey:
    """Everything a trace of ``provider``'s implementation of ``op`` may depend on."""

    op: str
    overload: str
    provider: str
    arguments: tuple[Any, ...]
    shares_with: tuple[int, ...]
    """For each argument, the index of the first argument that is the same node, or a tensor of
    the same storage."""

    @classmethod
    def of(
        cls, qualname: str, overload: str, provider: str, args: Sequence[Any], fakes: Sequence[Any]
    ) -> TraceKey:
        """Raises :class:`UncacheableArgument` for arguments without a value identity."""
        first: dict[tuple[str, int], int] = {}
        shares_with = []
        for i, arg in enumerate(args):
            storage = node_storage(arg) if isinstance(arg, Node) else None
            if storage is not None:
                shares_with.append(first.setdefault(("storage", storage), i))
            elif isinstance(arg, Node):
                shares_with.append(first.setdefault(("node", id(arg)), i))
            else:
                shares_with.append(i)
        arguments = tuple(_argument_key(f) for f in fakes)
        return cls(qualname, overload, provider, arguments, tuple(shares_with))


def is_traced_input(value: object) -> bool:
    """Whether an argument becomes an input of the trace (else it is baked in as a constant)."""
    return isinstance(value, (torch.Tensor, *_SYMBOLIC))


@dataclass(frozen=True)
class Trace:
    """A traced implementation: ``graph_module``'s placeholders take ``input_positions``'
    arguments, in order; the rest were constants when it was traced."""

    graph_module: GraphModule
    input_positions: tuple[int, ...]
    input_storages: dict[int, int]
    """Storage of an input's fake value -> index of the (first) input holding it."""


def trace_implementation(impl: IrOpImpl, fakes: Sequence[Any], fake_mode: Any) -> Trace:
    """``make_fx`` of ``impl``'s functional form on the fake arguments ``fakes`` (by position).

    Torch wrap is on while tracing, so IR ops that the implementation calls (a composite's
    components under ``unfused``) stay IR op nodes, to be lowered by their own dispatch.
    """
    from torch._inductor.decomposition import select_decomp_table
    from torch.fx.experimental.proxy_tensor import make_fx

    positions = tuple(i for i, value in enumerate(fakes) if is_traced_input(value))
    constants = list(fakes)
    run_impl = impl.functional_fn

    def run(*inputs: Any) -> Any:
        args = list(constants)
        for position, value in zip(positions, inputs, strict=True):
            args[position] = value
        return run_impl(*args)

    with fake_context(fake_mode), enable_torch_wrap(True):
        graph_module = make_fx(run, select_decomp_table(), tracing_mode="real")(
            *[fakes[p] for p in positions]
        )
    input_storages: dict[int, int] = {}
    for index, position in enumerate(positions):
        key = storage_key(fakes[position])
        if key is not None:
            input_storages.setdefault(key, index)
    return Trace(graph_module, positions, input_storages)


def inline_trace(
    graph: Graph, before: Node, trace: Trace, args: Sequence[Any], *, fresh: bool
) -> tuple[Any, list[Node]]:
    """Copy ``trace``'s nodes into ``graph`` before ``before``, fed with ``args`` (by position).

    Returns the copied output (a node, a tuple of nodes and ``None``, mirroring what the
    implementation returned) and the new nodes. ``fresh`` says the trace was made on these very
    arguments; otherwise the copies get storage identities of their own (see the module doc).
    Constants of the trace are registered on the graph's module under fresh names.
    """
    source = trace.graph_module
    placeholders = list(source.graph.find_nodes(op="placeholder"))
    inputs = [args[position] for position in trace.input_positions]
    env: dict[Node, Any] = dict(zip(placeholders, inputs, strict=True))
    storages: dict[int, int] = {}
    new_nodes: list[Node] = []
    output: Any = None
    stack_trace = before.meta.get("stack_trace")
    with graph.inserting_before(before):
        for node in source.graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "output":
                output = torch.fx.map_arg(node.args[0], lambda n: env[n])
                break
            if node.op == "get_attr":
                copied = _copy_constant(graph, source, node)
            else:
                copied = graph.node_copy(node, lambda n: env[n])
                if not fresh:
                    _give_own_storage(copied, trace, inputs, storages)
            if stack_trace is not None:
                copied.meta["stack_trace"] = stack_trace
            env[node] = copied
            new_nodes.append(copied)
    return output, new_nodes


def _give_own_storage(
    copied: Node, trace: Trace, inputs: Sequence[Any], storages: dict[int, int]
) -> None:
    """The storage identity of a node copied from a reused trace: its input's for a view of
    an input, else one per storage of the trace, new for this copy."""
    key = storage_key(copied.meta.get("val"))
    if key is None:
        return
    index = trace.input_storages.get(key)
    if index is not None and isinstance(inputs[index], Node):
        identity = node_storage(inputs[index])
    else:
        identity = storages.setdefault(key, -next(_copied_storages))
    if identity is not None:
        copied.meta[STORAGE_META_KEY] = identity


def _copy_constant(graph: Graph, source: GraphModule, node: Node) -> Node:
    owner = graph.owning_module
    if owner is None:
        raise RuntimeError("cannot inline a trace with constants into a graph without a module")
    assert isinstance(node.target, str)
    value = torch.fx.graph_module._get_attr(source, node.target)
    name = f"_ir_lowered_constant_{next(_constant_names)}"
    setattr(owner, name, value)
    copied = graph.get_attr(name)
    copied.meta.update(node.meta)
    return copied
