"""Which kernel set is being imported, and what it has registered: the record behind all-or-nothing.

:func:`ir_op.platforms.plugins.load_kernel_sets` imports each kernel set inside a
:class:`LoadingScope`. :meth:`ir_op.IrOp.register_impl` and :func:`ir_op.register_op` report to
the scope of the current context, so when the import fails the plugin manager can take back
exactly what that kernel set registered, and when a second kernel set claims a provider name that
a first one registered for the same op, both can be named.

The scope is a :class:`contextvars.ContextVar`: a registration made by another thread while a
kernel set loads (the application's own) is not attributed to the kernel set. A kernel set that
registers from a thread it starts itself is not tracked either; kernel sets register on import.

This module imports nothing from ir-op, so that :mod:`ir_op.op` can use it at import time.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ir_op.impl import IrOpImpl
    from ir_op.op import IrOp


@dataclass(frozen=True)
class KernelSetOrigin:
    """A kernel set as the user installed it: its entry point and the distribution declaring it."""

    name: str
    """The entry-point name in group ``ir_op.kernels``."""
    module: str
    """The entry point's value (the module that registers the providers)."""
    distribution: str | None = None
    version: str | None = None

    def describe(self) -> str:
        dist = (
            f"distribution {self.distribution} {self.version or ''}".rstrip()
            if self.distribution
            else "no distribution"
        )
        return f"kernel set {self.name!r} ({dist}, module {self.module})"


class ProviderConflictError(ValueError):
    """Two kernel sets (or a kernel set and the application) register one provider name for one op.

    Raised inside the second registration; :func:`~ir_op.platforms.plugins.load_kernel_sets`
    records it as the load error of both kernel sets.
    """

    def __init__(
        self, op_name: str, provider: str, claimant: KernelSetOrigin, owner: KernelSetOrigin | None
    ) -> None:
        self.op_name = op_name
        self.provider = provider
        self.claimant = claimant
        self.owner = owner
        if owner is None:
            msg = (
                f"{claimant.describe()} registers provider {provider!r} for op {op_name!r}, which "
                "was already registered outside any kernel set (by the application); the kernel "
                "set is not loaded"
            )
        else:
            msg = (
                f"{owner.describe()} and {claimant.describe()} both register provider "
                f"{provider!r} for op {op_name!r}; neither kernel set is loaded (uninstall the one "
                "that should not provide it)"
            )
        super().__init__(msg)


@dataclass
class LoadingScope:
    """What one kernel set registered while it was imported, in order."""

    origin: KernelSetOrigin
    impls: list[tuple[IrOp, str, IrOpImpl]] = field(default_factory=list)
    ops: list[IrOp] = field(default_factory=list)
    conflicts: list[ProviderConflictError] = field(default_factory=list)
    """Conflicts raised inside the import, kept even when the kernel set caught the error."""


_current: ContextVar[LoadingScope | None] = ContextVar("ir_op_kernel_set_loading", default=None)
_owners: weakref.WeakKeyDictionary[IrOp, dict[str, KernelSetOrigin]] = weakref.WeakKeyDictionary()
"""Which kernel set registered each provider of each op (providers the application registered
outside a kernel set's import have no entry)."""


@contextmanager
def loading(origin: KernelSetOrigin) -> Iterator[LoadingScope]:
    """Attribute the registrations made in this context inside the block to ``origin``."""
    scope = LoadingScope(origin)
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def owner(op: IrOp, provider: str) -> KernelSetOrigin | None:
    """The kernel set that registered ``provider`` for ``op``, if a kernel set did."""
    return _owners.get(op, {}).get(provider)


def provider_taken(op: IrOp, provider: str) -> None:
    """Called by ``register_impl`` when ``provider`` is already registered for ``op``.

    While a kernel set loads and the name belongs to someone else, raise a
    :class:`ProviderConflictError` naming both; otherwise return (the caller raises its own
    "already registered" error).
    """
    scope = _current.get()
    if scope is None:
        return
    first = owner(op, provider)
    if first == scope.origin:
        return  # the kernel set registers one name twice: its own bug, the plain error says so
    error = ProviderConflictError(op.name, provider, scope.origin, first)
    scope.conflicts.append(error)
    raise error


def impl_registered(op: IrOp, provider: str) -> None:
    """Called by ``register_impl`` after ``op.impls[provider]`` was set."""
    scope = _current.get()
    if scope is None:
        return
    scope.impls.append((op, provider, op.impls[provider]))
    _owners.setdefault(op, {})[provider] = scope.origin


def op_registered(op: IrOp) -> None:
    """Called by ``register_op`` after ``op`` joined the registry."""
    scope = _current.get()
    if scope is not None:
        scope.ops.append(op)


def forget(op: IrOp, provider: str) -> None:
    """Drop the owner record of a provider that was taken back."""
    owners = _owners.get(op)
    if owners is not None:
        owners.pop(provider, None)
