"""What the passes did to the graphs of one compile."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CompileReport:
    """Filled by the passes while Inductor compiles; one per backend call.

    A compile covers the graph Dynamo handed to the backend and its nested subgraphs
    (``torch.compiler.nested_compile_region``), so node names of different subgraphs may repeat;
    a name's entry then holds the last one's.
    """

    selected: dict[str, dict[str, str]] = field(default_factory=dict)
    """op name -> {IR node name -> the provider it was lowered to}."""
    fusions: dict[str, int] = field(default_factory=dict)
    """fusion name -> times it was applied (every enabled fusion has an entry)."""
    not_lowered: dict[str, str] = field(default_factory=dict)
    """IR node name -> why it was left for Inductor's fallback (it then runs eagerly)."""
    donated_inputs: list[str] = field(default_factory=list)
    """Graph inputs that ``maybe_inplace`` calls donated (by placeholder name)."""
    clones_removed: int = 0
    clones_kept: dict[str, str] = field(default_factory=dict)
    """clone node name -> the rule that kept it."""
    traces: int = 0
    """Implementations traced by the lowering pass."""
    trace_cache_hits: int = 0
    """IR nodes lowered by reusing an earlier trace."""
    lowering_seconds: float = 0.0

    def providers_of(self, op: str) -> set[str]:
        """The providers ``op``'s nodes were lowered to."""
        return set(self.selected.get(op, {}).values())
