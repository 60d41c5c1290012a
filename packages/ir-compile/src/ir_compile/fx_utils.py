"""FX helpers the passes share: finding IR op nodes, their bound arguments and fake values,
storage aliasing, and running a node on fake values.

An IR op node is a ``call_function`` node whose target is the ``torch.ops`` overload of a live
:class:`ir_op.IrOp` (any namespace: tests define ops in their own). Nodes carry their fake value
in ``node.meta["val"]`` (AOTAutograd and Inductor graphs) or ``node.meta["example_value"]``
(Dynamo's graph, before AOTAutograd).
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx import Graph, Node

from ir_op import IrOp
from ir_op.op import _OPS_BY_QUALNAME

DEFAULT_OVERLOAD = "default"
MAYBE_INPLACE_OVERLOAD = "maybe_inplace"


@dataclass(frozen=True)
class IrCall:
    """An IR op node: the op, which overload it calls, and the node."""

    op: IrOp
    overload: str
    node: Node

    @property
    def qualname(self) -> str:
        """``namespace::name`` of the op's operator."""
        return f"{self.op.torch_op.namespace}::{self.op.name}"

    def bound_args(self) -> tuple[Any, ...]:
        """The node's arguments by parameter position, defaults filled in (nodes stay nodes)."""
        return self.op.bind_arguments(*self.node.args, **self.node.kwargs)


def ir_op_of(target: object) -> tuple[IrOp, str] | None:
    """``(op, overload name)`` when ``target`` is an overload of a live IR op, else ``None``."""
    if not isinstance(target, torch._ops.OpOverload):
        return None
    op = _OPS_BY_QUALNAME.get(target._schema.name)
    if op is None:
        return None
    overload = target._overloadname
    if overload == DEFAULT_OVERLOAD and op.torch_op is target:
        return op, overload
    inplace = getattr(op, "maybe_inplace", None)
    if overload == MAYBE_INPLACE_OVERLOAD and inplace is not None and inplace.torch_op is target:
        return op, overload
    return None


def ir_call(node: Node) -> IrCall | None:
    """The :class:`IrCall` of ``node``, or ``None`` when it does not call an IR op."""
    if node.op != "call_function":
        return None
    found = ir_op_of(node.target)
    if found is None:
        return None
    return IrCall(found[0], found[1], node)


def ir_calls(graph: Graph) -> list[IrCall]:
    """Every IR op node of ``graph``, in graph order."""
    return [call for node in graph.nodes if (call := ir_call(node)) is not None]


def fake_value(value: Any) -> Any:
    """A node's fake value (``val``, else Dynamo's ``example_value``); other values as they are."""
    if isinstance(value, Node):
        meta = value.meta
        return meta["val"] if "val" in meta else meta.get("example_value")
    return value


def fake_values(args: Any) -> Any:
    """``args`` (any nesting of tuples, lists and dicts) with every node replaced by its value."""
    return torch.fx.map_arg(args, fake_value)


def has_fake_values(args: Any) -> bool:
    """Whether every node in ``args`` carries a fake value."""
    missing: list[Node] = []

    def check(node: Node) -> Node:
        if "val" not in node.meta and "example_value" not in node.meta:
            missing.append(node)
        return node

    torch.fx.map_arg(args, check)
    return not missing


def storage_key(value: object) -> int | None:
    """An identity of the tensor's storage (views share it), or ``None`` for non-tensors."""
    if isinstance(value, torch.Tensor) and value.layout == torch.strided:
        return int(value.untyped_storage()._cdata)
    return None


STORAGE_META_KEY = "ir_compile_storage"
"""Set by the lowering pass on nodes copied from a reused trace, whose fake values are shared
with the first copy (Inductor recomputes them after the post-grad passes): their storage
identity, so that aliasing stays visible until then."""


def node_storage(node: Node) -> int | None:
    """An identity of the storage of ``node``'s value (views share it), or ``None``."""
    key = node.meta.get(STORAGE_META_KEY)
    if key is not None:
        return int(key)
    return storage_key(fake_value(node))


def detect_fake_mode(values: Any) -> Any:
    """The fake tensor mode of Inductor's compile, or of ``values``' fake tensors."""
    from torch._guards import detect_fake_mode as detect

    flat = [v for v in torch.utils._pytree.tree_leaves(values) if isinstance(v, torch.Tensor)]
    return detect(flat)


@contextlib.contextmanager
def fake_context(fake_mode: Any) -> Iterator[None]:
    """The fake mode and the Python dispatcher, as Inductor uses them to run fake kernels."""
    from torch._dispatch.python import enable_python_dispatcher

    with contextlib.ExitStack() as stack:
        if fake_mode is not None:
            stack.enter_context(fake_mode)
        stack.enter_context(enable_python_dispatcher())
        yield


def run_on_fake_values(node: Node) -> Any:
    """Run ``node``'s target on its arguments' fake values (the caller enters the fake mode)."""
    args, kwargs = fake_values((node.args, node.kwargs))
    if node.target is operator.getitem:
        return operator.getitem(*args)
    assert callable(node.target)  # call_function nodes only
    return node.target(*args, **kwargs)


def is_view_of(node: Node, base: Node) -> bool:
    """Whether ``node``'s value is a view sharing ``base``'s storage (``base`` itself included)."""
    key = node_storage(base)
    return key is not None and node_storage(node) == key


def position_of(graph: Graph) -> dict[Node, int]:
    """Each node's index in graph order."""
    return {node: i for i, node in enumerate(graph.nodes)}


def output_nodes(graph: Graph) -> set[Node]:
    """The nodes the graph returns."""
    found: set[Node] = set()
    for node in graph.find_nodes(op="output"):
        torch.fx.map_arg(node.args, found.add)
    return found


def getitem_users(node: Node) -> dict[int, list[Node]] | None:
    """``{index: [getitem nodes]}`` for a node returning a tuple; ``None`` if another kind of
    node uses it (then its outputs cannot be rewired one by one)."""
    found: dict[int, list[Node]] = {}
    for user in node.users:
        if user.target is not operator.getitem or not isinstance(user.args[1], int):
            return None
        found.setdefault(user.args[1], []).append(user)
    return found


def schema_returns_tuple(target: torch._ops.OpOverload) -> bool:
    """Whether the operator returns several values (a tuple) rather than one."""
    return len(target._schema.returns) != 1


def written_arguments(node: Node) -> list[Node]:
    """The argument nodes that ``node`` writes in place (from its operator's schema)."""
    target = node.target
    if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
        return []
    written: list[Node] = []
    schema = target._schema
    for i, argument in enumerate(schema.arguments):
        if argument.alias_info is None or not argument.alias_info.is_write:
            continue
        value = node.args[i] if i < len(node.args) else node.kwargs.get(argument.name)
        torch.fx.map_arg(value, written.append)
    return written
