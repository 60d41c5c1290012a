"""What ``with`` blocks change, kept per thread and per asyncio task.

``with op.set_priority([...])``, ``with config.set_priority()`` and ``with enable_torch_wrap(...)``
do not write process-wide state: they set :data:`OVERRIDES`, one :class:`contextvars.ContextVar`,
for the rest of the block, and reset it on exit (``Token.reset``, so nesting and exceptions
restore exactly; blocks of one context nest, as ``with`` statements do). A serving engine's
threads and tasks therefore never see each other's blocks, and blocks that overlap in two
threads may exit in any order. ``set_default`` and ``set_default_torch_wrap`` stay
process-wide: they are what every context sees outside its own blocks.

The rules follow from :mod:`contextvars`:

- a new thread starts with an empty context, so it sees the process defaults, not the blocks of
  the thread that started it (run it under ``contextvars.copy_context().run`` to carry them, or
  use ``asyncio.to_thread``, which does);
- an asyncio task starts with a copy of its creator's context: a block around
  ``asyncio.create_task`` applies in the task, and a block inside a task stays inside it.

One variable holding ``None`` outside every block keeps the hot path at one
``ContextVar.get()`` (through :func:`current_overrides`) and a ``None`` test; the object set
inside a block is immutable, and each block sets a new one, so a context never sees a
half-made change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ir_op.impl import IrOpImpl

_F = TypeVar("_F", bound=Callable[..., Any])


def assume_constant_result(fn: _F) -> _F:
    """What ``torch.compiler.assume_constant_result(fn)`` does, without importing Dynamo.

    That function imports ``torch._dynamo`` (over a second of start-up, for eager users who
    never compile) to set the one attribute Dynamo reads when a trace reaches ``fn``: Dynamo
    then calls ``fn`` eagerly and keeps its result as a constant of the graph, with no guard.
    ``tests/test_import_cost.py`` checks that torch still marks a function this way.
    """
    fn._dynamo_marked_constant = True  # type: ignore[attr-defined]
    return fn


class Overrides:
    """The state ``with`` blocks set in one context, read-only once made.

    ``torch_wrap`` is the torch wrap flag of the innermost ``enable_torch_wrap`` block (``None``:
    no such block, the process default applies). ``priorities`` maps an op's qualified name
    (``namespace::name``, unique for the life of the process) to the filtered priority of its
    innermost ``set_priority`` block; an op not in it uses its process default. A string key
    keeps the lookup cheap and lets Dynamo guard on it as a constant.
    """

    # No __slots__: Dynamo reads plain instance attributes of a constant it did not build.

    def __init__(self, torch_wrap: bool | None, priorities: Mapping[str, list[IrOpImpl]]) -> None:
        self.torch_wrap = torch_wrap
        self.priorities = priorities

    def __repr__(self) -> str:
        return f"Overrides(torch_wrap={self.torch_wrap!r}, priorities={dict(self.priorities)!r})"


OVERRIDES: ContextVar[Overrides | None] = ContextVar("ir_op_overrides", default=None)
"""This context's :class:`Overrides`; ``None`` (the default) outside every block."""

_NO_PRIORITIES: Mapping[str, list[IrOpImpl]] = {}


@assume_constant_result
def current_overrides() -> Overrides | None:
    """This context's :class:`Overrides` (``OVERRIDES.get()``), as every call site reads it.

    Dynamo before torch 2.15 cannot trace ``ContextVar.get``; marked as a constant result,
    this is called once while tracing and its value baked into the graph. So, on every torch
    alike, a compiled graph keeps the providers (and, torch wrap off, the choice of inlining)
    that the blocks of the compiling context chose: entering or leaving a block does not
    recompile it (torch 2.15's own ``ContextVar`` guard is not used).
    """
    return OVERRIDES.get()


@contextlib.contextmanager
def torch_wrap_block(enable: bool) -> Iterator[None]:
    """A block in which this context's torch wrap flag is ``enable`` (checked by the caller)."""
    current = OVERRIDES.get()
    priorities = _NO_PRIORITIES if current is None else current.priorities
    token = OVERRIDES.set(Overrides(enable, priorities))
    try:
        yield
    finally:
        OVERRIDES.reset(token)


@contextlib.contextmanager
def priority_block(priorities: Mapping[str, list[IrOpImpl]]) -> Iterator[None]:
    """A block in which the ops named in ``priorities`` (already filtered) use those lists.

    Entries of enclosing blocks for other ops, and their torch wrap flag, stay in force.
    """
    current = OVERRIDES.get()
    if current is None:
        new = Overrides(None, dict(priorities))
    else:
        new = Overrides(current.torch_wrap, {**current.priorities, **priorities})
    token = OVERRIDES.set(new)
    try:
        yield
    finally:
        OVERRIDES.reset(token)
