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
arguments are the same node). One trace then serves every such node.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import Graph, GraphModule, Node

from ir_compile.fx_utils import fake_context, run_on_fake_values
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
    same_as: tuple[int, ...]
    """For each argument, the index of the first argument that is the same graph node."""

    @classmethod
    def of(
        cls, qualname: str, overload: str, provider: str, args: Sequence[Any], fakes: Sequence[Any]
    ) -> TraceKey:
        """Raises :class:`UncacheableArgument` for arguments without a value identity."""
        first: dict[int, int] = {}
        same_as = tuple(
            first.setdefault(id(a), i) if isinstance(a, Node) else i for i, a in enumerate(args)
        )
        return cls(qualname, overload, provider, tuple(_argument_key(f) for f in fakes), same_as)


def is_traced_input(value: object) -> bool:
    """Whether an argument becomes an input of the trace (else it is baked in as a constant)."""
    return isinstance(value, (torch.Tensor, *_SYMBOLIC))


@dataclass(frozen=True)
class Trace:
    """A traced implementation: ``graph_module``'s placeholders take ``input_positions``'
    arguments, in order; the rest were constants when it was traced."""

    graph_module: GraphModule
    input_positions: tuple[int, ...]


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
    return Trace(graph_module, positions)


def inline_trace(
    graph: Graph,
    before: Node,
    trace: Trace,
    args: Sequence[Any],
    *,
    fresh: bool,
    fake_mode: Any,
) -> tuple[Any, list[Node]]:
    """Copy ``trace``'s nodes into ``graph`` before ``before``, fed with ``args`` (by position).

    Returns the copied output (a node, a tuple of nodes and ``None``, mirroring what the
    implementation returned) and the new nodes. With ``fresh`` the trace was made on these very
    arguments and its fake values are kept; a reused trace gets its fake values recomputed, so
    no two nodes share a fake tensor (Inductor reasons about aliasing from their storages).
    Constants of the trace are registered on the graph's module under fresh names.
    """
    source = trace.graph_module
    placeholders = list(source.graph.find_nodes(op="placeholder"))
    env: dict[Node, Any] = {
        ph: args[position] for ph, position in zip(placeholders, trace.input_positions, strict=True)
    }
    new_nodes: list[Node] = []
    output: Any = None
    stack_trace = before.meta.get("stack_trace")
    with graph.inserting_before(before), fake_context(None if fresh else fake_mode):
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
                    copied.meta["val"] = run_on_fake_values(copied)
            if stack_trace is not None:
                copied.meta["stack_trace"] = stack_trace
            env[node] = copied
            new_nodes.append(copied)
    return output, new_nodes


def _copy_constant(graph: Graph, source: GraphModule, node: Node) -> Node:
    owner = graph.owning_module
    if owner is None:
        raise RuntimeError("cannot inline a trace with constants into a graph without a module")
    assert isinstance(node.target, str)
    value = torch.fx.graph_module._get_attr(source, node.target)  # type: ignore[attr-defined]
    name = f"_ir_lowered_constant_{next(_constant_names)}"
    setattr(owner, name, value)
    copied = graph.get_attr(name)
    copied.meta.update(node.meta)
    return copied
