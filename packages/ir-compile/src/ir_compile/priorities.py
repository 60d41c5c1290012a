"""The provider priorities that IR ops are lowered with.

Per op: the entry of the compile's override (``backend(priority=...)``) if it names the op, else
``op.get_priority(compiling=True)`` (the priority the user set, else the platform's compile
defaults), else ``["native"]``, which is what dispatch runs when no priority applies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from ir_op import IrOp, IrOpPriorityConfig
from ir_op.naming import NATIVE

PriorityLike = IrOpPriorityConfig | Mapping[str, Sequence[str] | str] | str | None


def as_priority_config(priority: PriorityLike) -> IrOpPriorityConfig | None:
    """Normalize ``backend(priority=...)``: a config, a mapping, or the text form.

    Op names are checked now; provider names too (applying the config once, then restoring
    every op), so a typo fails at construction, naming the op and the valid providers.
    """
    if priority is None:
        return None
    if isinstance(priority, IrOpPriorityConfig):
        config = priority
    elif isinstance(priority, str):
        config = IrOpPriorityConfig.parse(priority)
    elif isinstance(priority, Mapping):
        config = IrOpPriorityConfig.from_dict(priority)
    else:
        raise TypeError(
            "priority must be an IrOpPriorityConfig, a mapping of op name -> providers or the "
            f"text form 'op=provider,provider;...', got {type(priority).__name__}: {priority!r}"
        )
    with config.set_priority():
        pass
    return config


class CompilePriorities:
    """Which providers each op is lowered with, and a scope that applies them to dispatch."""

    def __init__(self, overrides: IrOpPriorityConfig | None = None) -> None:
        self.overrides = overrides

    def providers(self, op: IrOp) -> list[str]:
        if self.overrides is not None and op.name in self.overrides:
            return list(self.overrides[op.name])
        return op.get_priority(compiling=True) or [NATIVE]

    @contextlib.contextmanager
    def applied(self) -> Iterator[PriorityScope]:
        """A scope in which :meth:`PriorityScope.activate` makes an op dispatch as it lowers."""
        with contextlib.ExitStack() as stack:
            yield PriorityScope(self, stack)


class PriorityScope:
    """Sets each op's lowering priority on first use; the enclosing ``with`` restores them."""

    def __init__(self, priorities: CompilePriorities, stack: contextlib.ExitStack) -> None:
        self._priorities = priorities
        self._stack = stack
        self._active: set[int] = set()

    def activate(self, op: IrOp) -> None:
        if id(op) in self._active:
            return
        providers = self._priorities.providers(op)
        self._stack.enter_context(op.set_priority(providers))
        self._active.add(id(op))
