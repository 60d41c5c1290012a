"""Test support for ir-op and for kernel sets built on it.

- :func:`isolated_registry`: register throwaway ops without touching ``ir_op.ops`` or
  ``torch.ops.ir``.
- :func:`forced_platform`: run a block as if ``IR_OP_PLATFORM`` named a platform.
- :func:`preserved_priorities`: undo every priority change made inside a block.
- :func:`assert_outputs_close`: compare a provider's outputs with native ones at the op's
  tolerances (fp8 included).
- :func:`random_rows`: random inputs, optionally strided.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

from ir_op import library, platforms
from ir_op.op import IrOp
from ir_op.testing.compare import assert_outputs_close
from ir_op.testing.inputs import random_rows

__all__ = [
    "assert_outputs_close",
    "forced_platform",
    "isolated_registry",
    "preserved_priorities",
    "random_rows",
    "unset_priorities",
]


@contextlib.contextmanager
def isolated_registry(namespace: str | None = None) -> Iterator[dict[str, IrOp]]:
    """An empty op registry and a fresh ``torch.ops`` namespace inside the block.

    Yields the new registry. Ops defined inside live in ``torch.ops.<namespace>``
    (default: a unique ``ir_test_...`` name), since torch cannot undefine an operator.
    """
    ns = namespace or f"ir_test_{uuid.uuid4().hex[:12]}"
    saved = IrOp.registry
    IrOp.registry = {}
    try:
        with library.use_namespace(ns):
            yield IrOp.registry
    finally:
        IrOp.registry = saved


@contextlib.contextmanager
def preserved_priorities() -> Iterator[None]:
    """Restore the priority state of every registered op when the block ends."""
    ops = list(IrOp.registry.values())
    saved = [op._priority_state() for op in ops]
    try:
        yield
    finally:
        for op, state in zip(ops, saved, strict=False):
            op._restore_priority_state(state)


@contextlib.contextmanager
def unset_priorities() -> Iterator[None]:
    """Every registered op back to "no priority set" (defaults apply) inside the block."""
    with preserved_priorities():
        for op in IrOp.registry.values():
            op._restore_priority_state((None, False))
        yield


@contextlib.contextmanager
def forced_platform(name: str | None) -> Iterator[platforms.Platform]:
    """Resolve the platform afresh as if ``IR_OP_PLATFORM=name`` (``None``: unset) was set.

    Ops' default priorities and their providers' support checks are re-evaluated inside the
    block and again after it.
    """
    var = platforms.PLATFORM_ENV_VAR
    old = os.environ.get(var)
    ops = list(IrOp.registry.values())
    saved = [op._priority_state() for op in ops]

    def reset() -> None:
        platforms._reset_for_tests()
        for op in ops:
            for impl in op.impls.values():
                impl._support = None
            if not op._priority_from_user:
                op._restore_priority_state((None, False))

    try:
        if name is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = name
        reset()
        yield platforms.current_platform()
    finally:
        if old is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = old
        reset()
        for op, state in zip(ops, saved, strict=False):
            op._restore_priority_state(state)
