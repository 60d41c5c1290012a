"""``IrPassManager``: ir-compile's passes as one Inductor post-grad pass, with a cache key.

Order on each post-grad graph (the compiled graph and each nested region's):

1. fusion (:class:`~ir_compile.fusion.FusionPass`), on IR op nodes;
2. cleanup (topological sort, dead-code elimination);
3. lowering (:class:`~ir_compile.passes.lowering.IrLoweringPass`);
4. clone elimination (:class:`~ir_compile.passes.clone_elimination.CloneEliminationPass`);
5. cleanup.

Its companion pre-grad pass, :attr:`IrPassManager.inplace`, runs before AOTAutograd
(``pre_grad_custom_pass``); :meth:`IrPassManager.inductor_config` gives both entries.

:meth:`IrPassManager.uuid` keys Inductor's FX-graph and AOTAutograd caches. It changes with the
pass configuration (fusions, priority overrides, options), with every op's lowering priority and
the source of every implementation that priority may select (native included), and with
ir-compile's own source, so a cache never serves a graph lowered differently. A compile whose
``maybe_inplace`` calls donated graph inputs gets no uuid, which makes Inductor bypass both caches
for it: the donation is not visible in the graph the cache keys on, yet it changes the result.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import torch
from torch._inductor.custom_graph_pass import CustomGraphPass
from torch.fx import Graph, Node

import ir_compile
from ir_compile.fusion import FusionPass
from ir_compile.fx_utils import ir_calls, node_storage
from ir_compile.passes.cleanup import CleanupPass
from ir_compile.passes.clone_elimination import CloneEliminationPass
from ir_compile.passes.inplace import DONATES_META_KEY, InplaceFunctionalizationPass
from ir_compile.passes.lowering import IrLoweringPass
from ir_compile.priorities import CompilePriorities, PriorityLike, as_priority_config
from ir_compile.report import CompileReport
from ir_op.hashing import hash_files
from ir_op.naming import NATIVE
from ir_op.op import _OPS_BY_QUALNAME

logger = logging.getLogger(__name__)


@functools.cache
def _own_source_hash() -> str:
    """ir-compile's own source (read once per process: it does not change under a running
    compile, unlike the implementations, which users edit)."""
    root = Path(ir_compile.__file__).parent
    return hash_files(*sorted(root.rglob("*.py")))


def _donated_placeholders(graph: Graph) -> set[Node]:
    """The placeholders that ``maybe_inplace`` calls donated (marked by the pre-grad pass)."""
    by_storage = {
        node_storage(p): p
        for p in graph.find_nodes(op="placeholder")
        if node_storage(p) is not None
    }
    donated: set[Node] = set()
    for call in ir_calls(graph):
        names = call.node.meta.get("custom", {}).get(DONATES_META_KEY, ())
        if not names:
            continue
        try:
            args = call.bound_args()
        except TypeError:  # the lowering pass names such a node
            continue
        parameters = call.op.signature.parameter_names
        for name in names:
            value = args[parameters.index(name)]
            if isinstance(value, Node) and node_storage(value) in by_storage:
                donated.add(by_storage[node_storage(value)])
    return donated


class IrPassManager(CustomGraphPass):
    """Fusion, lowering and clone elimination for Inductor's ``post_grad_custom_post_pass``.

    ``priority`` overrides the lowering priority of the ops it names (an
    ``IrOpPriorityConfig``, a mapping or the text form); ``fusions`` names the fusions to apply
    (``None``: all; empty: none). ``trace_cache`` and ``eliminate_clones`` are for benchmarks
    and debugging. :attr:`report` accumulates what the passes did until :meth:`reset_report`.
    """

    def __init__(
        self,
        priority: PriorityLike = None,
        fusions: Collection[str] | None = None,
        *,
        trace_cache: bool = True,
        eliminate_clones: bool = True,
    ) -> None:
        self.priority = as_priority_config(priority)
        self.priorities = CompilePriorities(self.priority)
        self.fusion = FusionPass(fusions)
        self.cleanup = CleanupPass()
        self.lowering = IrLoweringPass(self.priorities, cache=trace_cache)
        self.clone_elimination = CloneEliminationPass()
        self.eliminate_clones = eliminate_clones
        self.inplace = InplaceFunctionalizationPass()
        self.report = CompileReport()
        self.reset_report()

    @property
    def fusions(self) -> tuple[str, ...]:
        return self.fusion.fusions

    def reset_report(self) -> CompileReport:
        """Start a new report (one per compile) and return it."""
        self.report = CompileReport(fusions=dict.fromkeys(self.fusion.fusions, 0))
        return self.report

    def __call__(self, graph: Graph) -> None:
        report = self.report
        donated = _donated_placeholders(graph)
        report.donated_inputs = list(self.inplace.donated_inputs)

        self.fusion(graph)
        for name, count in self.fusion.counts.items():
            report.fusions[name] = report.fusions.get(name, 0) + count
        self.cleanup(graph)

        self.lowering(graph)
        lowered = self.lowering.result
        for op, nodes in lowered.selected.items():
            report.selected.setdefault(op, {}).update(nodes)
        report.not_lowered.update(lowered.not_lowered)
        report.traces += lowered.traces
        report.trace_cache_hits += lowered.cache_hits
        report.lowering_seconds += lowered.seconds

        if self.eliminate_clones:
            self.clone_elimination(graph, donated)
            report.clones_removed += len(self.clone_elimination.removed)
            report.clones_kept.update(self.clone_elimination.kept)
        self.cleanup(graph)

    # -- cache key -----------------------------------------------------------------------------

    def _priority_fingerprint(self) -> list[Any]:
        entries: list[Any] = []
        for qualname, op in sorted(_OPS_BY_QUALNAME.items()):
            providers = self.priorities.providers(op)
            listed = [*providers, NATIVE] if NATIVE not in providers else providers
            entries.append([qualname, providers, [op.impls[p].uuid() for p in listed]])
        return entries

    def uuid(self) -> str | None:
        """The cache key of this configuration, or ``None`` (caches bypassed) for a compile that
        donates graph inputs."""
        if self.inplace.donated_inputs:
            return None
        try:
            priorities = self._priority_fingerprint()
        except (OSError, ValueError) as e:  # an implementation without a source file
            logger.info("IrPassManager has no cache key, Inductor's caches are bypassed: %s", e)
            return None
        payload = {
            "ir_compile": [ir_compile.__version__, _own_source_hash()],
            "torch": torch.__version__,
            "fusions": list(self.fusion.fusions),
            "priority_override": str(self.priority) if self.priority is not None else None,
            "eliminate_clones": self.eliminate_clones,
            "priorities": priorities,
        }
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()

    # -- installing ----------------------------------------------------------------------------

    def inductor_config(self) -> dict[str, Any]:
        """The Inductor config entries that install the passes (for ``config_patches``)."""
        from torch._inductor import config

        entries: dict[str, Any] = {
            "pre_grad_custom_pass": self.inplace,
            "post_grad_custom_post_pass": self,
        }
        if hasattr(config, "pre_grad_pass_timing"):
            # Pre-grad passes must run before the caches are looked up: the key then covers
            # the retargeted graph and the donation (see the module doc).
            entries["pre_grad_pass_timing"] = "early"
        return entries


class ChainedPass(CustomGraphPass):
    """Runs several graph passes in order; its uuid combines theirs (none if one has none)."""

    def __init__(self, passes: Iterable[Any]) -> None:
        self.passes = list(passes)

    def __call__(self, graph: Graph) -> None:
        for graph_pass in self.passes:
            graph_pass(graph)

    def uuid(self) -> str | None:
        parts: list[str] = []
        for graph_pass in self.passes:
            uuid = graph_pass.uuid() if isinstance(graph_pass, CustomGraphPass) else None
            if not uuid:
                return None
            parts.append(uuid if isinstance(uuid, str) else repr(uuid))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()
