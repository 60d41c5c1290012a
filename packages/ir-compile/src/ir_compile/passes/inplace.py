"""``InplaceFunctionalizationPass`` (pre-grad): ``maybe_inplace`` calls become functional calls.

``op.maybe_inplace(x, ...)`` lets a provider overwrite its activations, and its caller promises
not to read them again. Left as it is, AOTAutograd functionalizes the mutating overload
(``auto_functionalized``, with copies back into mutated graph inputs) and the lowering pass cannot
lower it. Since the caller never reads the activations again, the functional default overload
computes the same outputs, so this pass retargets each ``maybe_inplace`` node to it, before
AOTAutograd runs. An in-place provider is then reached through its functional form (which clones
the activations), and :class:`~ir_compile.passes.clone_elimination.CloneEliminationPass` removes
those clones where the graph allows it.

Checks and records:

- The promise is checked: if a donated activation, or a view of it, is used after the call, the
  pass raises :class:`DonatedActivationReadError` naming both nodes (the functional call would
  silently give another result than eager mode with an in-place provider).
- Activations that are graph inputs (or views of them) were donated by the caller of the
  compiled graph. The pass lists their placeholders in :attr:`donated_inputs` and marks the call
  node with the donated parameter names in ``node.meta["custom"]``, which AOTAutograd carries
  over to the post-grad node; clone elimination may then write into those inputs. Only the
  outermost graph's inputs count: the inputs of a nested compile region belong to its caller.
- A ``maybe_inplace`` call whose output for an absent optional activation (a rotary embedding
  without a key) is used stays as it is: the default overload returns ``None`` there.
"""

from __future__ import annotations

import logging

from torch._inductor.custom_graph_pass import CustomGraphPass
from torch.fx import Graph, Node

from ir_compile.fx_utils import (
    MAYBE_INPLACE_OVERLOAD,
    IrCall,
    getitem_users,
    ir_call,
    node_storage,
    position_of,
)
from ir_op.hashing import hash_files, source_file

logger = logging.getLogger(__name__)

DONATES_META_KEY = "ir_compile_donates"
"""Key in ``node.meta["custom"]``: the parameter names whose graph inputs a call donated."""


class DonatedActivationReadError(ValueError):
    """A ``maybe_inplace`` call's activation is used after the call."""


class InplaceFunctionalizationPass(CustomGraphPass):
    """Retarget ``maybe_inplace`` IR op nodes to the default overload (see the module doc).

    After a run, :attr:`retargeted` names the retargeted nodes and :attr:`donated_inputs` the
    graph inputs donated (placeholder names, graph order); both describe the last graph passed,
    and a nested region's graph never donates inputs.
    """

    def __init__(self) -> None:
        self.retargeted: list[str] = []
        self.donated_inputs: list[str] = []

    def __call__(self, graph: Graph) -> None:
        order = position_of(graph)
        graph_inputs = _graph_inputs_by_storage(graph)
        retargeted: list[str] = []
        donated: set[Node] = set()
        for node in list(graph.nodes):
            call = ir_call(node)
            if call is None or call.overload != MAYBE_INPLACE_OVERLOAD:
                continue
            args = call.bound_args()
            if _absent_output_is_used(call, args):
                logger.debug("%s stays maybe_inplace: an absent output is used", node.name)
                continue
            donating: list[str] = []
            for name in call.op.activations:
                activation = args[call.op.signature.parameter_names.index(name)]
                if not isinstance(activation, Node):
                    continue
                _check_not_read_later(call, name, activation, order)
                placeholder = graph_inputs.get(node_storage(activation))
                if placeholder is not None:
                    donating.append(name)
                    donated.add(placeholder)
            node.target = call.op.torch_op
            if donating:
                node.meta["custom"] = {**node.meta.get("custom", {}), DONATES_META_KEY: donating}
            retargeted.append(node.name)
        self.retargeted = retargeted
        self.donated_inputs = [n.name for n in graph.nodes if n in donated]
        if retargeted:
            logger.info(
                "InplaceFunctionalizationPass: %d maybe_inplace call(s) made functional%s",
                len(retargeted),
                f"; donated graph inputs: {', '.join(self.donated_inputs)}"
                if self.donated_inputs
                else "",
            )

    def uuid(self) -> str:
        return hash_files(source_file(InplaceFunctionalizationPass))


def _graph_inputs_by_storage(graph: Graph) -> dict[int | None, Node]:
    """The storages of the caller's inputs: placeholders that Dynamo made from its arguments.

    A nested region's graph has placeholders too, but they carry no ``grapharg``.
    """
    found: dict[int | None, Node] = {}
    for node in graph.find_nodes(op="placeholder"):
        storage = node_storage(node)
        if "grapharg" in node.meta and storage is not None:
            found.setdefault(storage, node)
    return found


def _absent_output_is_used(call: IrCall, args: tuple[object, ...]) -> bool:
    """Whether an output standing for a ``None`` activation has users (outputs follow the
    activations, in order)."""
    names = call.op.signature.parameter_names
    absent = [i for i, name in enumerate(call.op.activations) if args[names.index(name)] is None]
    if not absent:
        return False
    users = getitem_users(call.node)
    if users is None:
        return True
    return any(getitem.users for i in absent for getitem in users.get(i, []))


def _check_not_read_later(
    call: IrCall, name: str, activation: Node, order: dict[Node, int]
) -> None:
    """Raise if ``activation`` or a view of it is used after ``call``'s node."""
    node = call.node
    storage = node_storage(activation)
    seen = {activation}
    frontier = [activation]
    while frontier:
        alias = frontier.pop()
        for user in alias.users:
            if user is node:
                continue
            if order[user] > order[node]:
                via = "" if alias is activation else f" through its view {alias.name!r}"
                raise DonatedActivationReadError(
                    f"{call.op.name}.maybe_inplace (node {node.name!r}) donates its activation "
                    f"{name!r} (node {activation.name!r}), but node {user.name!r} uses it "
                    f"afterwards{via}. maybe_inplace may overwrite its activations, so they must "
                    f"not be read after the call: read the returned values instead, or call "
                    f"{call.op.name}(...) (functional) where the input is still needed"
                )
            if storage is not None and user not in seen and node_storage(user) == storage:
                seen.add(user)
                frontier.append(user)
