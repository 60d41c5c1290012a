"""``KernelizeReport``: what :func:`~ir_op.transformers.kernelize` did to each module, and why."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class KernelizeReport:
    """The outcome of one :func:`~ir_op.transformers.kernelize` call.

    ``replaced`` maps the path of each module that now runs an ir op (``"model.norm"``,
    ``"model.layers.0.mlp"``) to the op's name; a module kernelized by an earlier call is listed
    again, so the report of a second call equals the first. ``skipped`` maps the path of each
    module that looked like a candidate (by its attributes or class name) but was left stock, to
    why. ``notes`` are decisions about the model as a whole (fusions not done in eager mode and
    where they happen instead).
    """

    replaced: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def count(self, op_name: str) -> int:
        """How many modules run ``op_name``."""
        return sum(1 for name in self.replaced.values() if name == op_name)

    def __str__(self) -> str:
        lines = [f"kernelized {len(self.replaced)} modules, skipped {len(self.skipped)}"]
        lines += [f"  {path}: {op}" for path, op in self.replaced.items()]
        lines += [f"  skipped {path}: {why}" for path, why in self.skipped.items()]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)
