"""Entry-point plugins: kernel sets (``ir_op.kernels``) and platforms (``ir_op.platforms``).

ir-op never names a kernel set. A kernel set is a distribution that declares::

    [project.entry-points."ir_op.kernels"]
    cuda = "ir_kernels_cuda"        # name = kernel set, value = the module that registers it

and an out-of-tree platform one that declares ``[project.entry-points."ir_op.platforms"]``
with a :class:`~ir_op.platforms.base.Platform` subclass as value. ``IR_OP_DISABLE_PLUGINS=1``
loads neither.

A kernel set loads all or nothing. Every provider (and op) it registers while its module is
imported is recorded (see :mod:`ir_op._loading`); if the import raises, whatever it registered
is taken back, the ops it touched recompute their default priorities, and the error is
recorded (:func:`kernel_set_errors`) and written to stderr once, even without logging set up.
Any exception counts, ``SystemExit`` and other ``BaseException`` subclasses included: a kernel
set cannot end the host process. ``KeyboardInterrupt`` alone is re-raised (after the
registrations are taken back), because the user asked to stop.

One provider name has one owner. When a second kernel set registers a provider name that a
first one registered for the same op, both fail as a whole, each recording a
:class:`~ir_op._loading.ProviderConflictError` that names both entry points and distributions.
Failing the first one entirely, rather than taking back just that name, is deliberate: a
kernel set missing one of its providers is half-registered, which is what all-or-nothing is
there to prevent, and nothing tells which of the two is the genuine one. A kernel set that
registers a name the application registered before it fails alone.

The host keeps working with the kernel sets that did load.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

from ir_op import _loading
from ir_op._loading import KernelSetOrigin, LoadingScope, ProviderConflictError
from ir_op._logging import logger, warning_visible_once
from ir_op.op import IrOp
from ir_op.platforms.base import Platform

KERNELS_GROUP = "ir_op.kernels"
PLATFORMS_GROUP = "ir_op.platforms"
DISABLE_ENV_VAR = "IR_OP_DISABLE_PLUGINS"


@dataclass(frozen=True)
class LoadedKernelSet:
    name: str
    module: str
    distribution: str | None
    version: str | None


_lock = threading.RLock()
_loaded: dict[str, LoadedKernelSet] = {}
_scopes: dict[str, LoadingScope] = {}
"""What each loaded kernel set registered, so a later conflict can take it back (kept across
:func:`_reset`, as the modules and their registrations are)."""
_errors: dict[str, BaseException] = {}
_platform_errors: dict[str, BaseException] = {}
_warned: set[str] = set()


def plugins_disabled() -> bool:
    return os.environ.get(DISABLE_ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def _entry_points(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)  # the first distribution on sys.path wins, like imports
    return found


def _distribution(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def available_kernel_sets() -> list[str]:
    """Names of the installed kernel sets (loaded or not)."""
    return [] if plugins_disabled() else sorted(_entry_points(KERNELS_GROUP))


def load_kernel_sets(names: Collection[str] | None = None) -> None:
    """Import the installed kernel sets (only ``names``, if given), each all or nothing.

    Idempotent: a kernel set that loaded or failed is not imported again. See the module
    docstring for what a failure takes back.
    """
    if plugins_disabled():
        return
    with _lock:
        for name, ep in _entry_points(KERNELS_GROUP).items():
            if (names is not None and name not in names) or name in _loaded or name in _errors:
                continue
            _load_one(name, ep)


def _load_one(name: str, ep: EntryPoint) -> None:
    dist_name, version = _distribution(ep)
    origin = KernelSetOrigin(name, ep.value, dist_name, version)
    error: BaseException | None = None
    with _loading.loading(origin) as scope:
        try:
            module: ModuleType = ep.load()
        except KeyboardInterrupt:
            _take_back(scope)
            raise
        except BaseException as e:  # SystemExit too: a kernel set cannot end the process
            error = e
    if error is None and scope.conflicts:
        error = scope.conflicts[0]  # the kernel set caught the conflict and went on
    if error is not None:
        _take_back(scope)
        _fail(origin, error)
        for conflict in scope.conflicts:
            if conflict.owner is not None and conflict.owner.name in _loaded:
                _unload(conflict.owner, conflict)
        return
    _loaded[name] = LoadedKernelSet(name, module.__name__, dist_name, version)
    if scope.impls or scope.ops or name not in _scopes:
        # A module imported before a _reset() registers nothing the second time: keep what
        # its first import registered, so a later conflict can still take that back.
        _scopes[name] = scope


def _fail(origin: KernelSetOrigin, error: BaseException) -> None:
    _errors[origin.name] = error
    warning_visible_once(
        _warned,
        origin.name,
        "ir-op: %s failed to load and is skipped, none of its providers registered: %s: %s",
        origin.describe(),
        type(error).__name__,
        error,
    )


def _unload(origin: KernelSetOrigin, error: ProviderConflictError) -> None:
    """Fail a kernel set that had loaded: take back everything it registered."""
    del _loaded[origin.name]
    scope = _scopes.pop(origin.name, None)
    if scope is not None:
        _take_back(scope)
    _fail(origin, error)


def _take_back(scope: LoadingScope) -> None:
    """Undo the registrations recorded in ``scope``, newest first.

    Ops that lose a provider recompute their default priority on next use; a process-wide
    priority (``set_default``) that lists a provider taken back is refiltered without it. A
    ``set_priority`` block open at that moment keeps its list until it exits: kernel sets load
    before the first priority is read, so only an explicit late ``load_kernel_sets`` can meet one.
    """
    touched: dict[int, IrOp] = {}
    removed: set[int] = set()
    for op, provider, impl in reversed(scope.impls):
        if op.impls.get(provider) is impl:
            del op.impls[provider]
            removed.add(id(impl))
            touched[id(op)] = op
        _loading.forget(op, provider)
    for op in reversed(scope.ops):
        if IrOp.registry.get(op.name) is op:
            # torch cannot undefine its operator; the op just leaves ir-op's registry
            del IrOp.registry[op.name]
    for op in touched.values():
        impls, from_user = op._priority_state()
        if not from_user:
            op._restore_priority_state((None, False))
        elif impls is not None and any(id(i) in removed for i in impls):
            kept = [i.provider for i in impls if id(i) not in removed]
            op._restore_priority_state((op._filter_priority(kept), True))
    if touched:
        logger.debug(
            "ir-op: took back %d provider registrations of %s",
            len(removed),
            scope.origin.describe(),
        )


def loaded_kernel_sets() -> dict[str, LoadedKernelSet]:
    """The kernel sets imported so far, by name."""
    return dict(_loaded)


def kernel_set_errors() -> dict[str, BaseException]:
    """The kernel sets that failed to load, by name, with their error.

    A :class:`~ir_op._loading.ProviderConflictError` where two kernel sets claimed one provider
    name (both are listed, with the same error).
    """
    return dict(_errors)


def platform_plugin_errors() -> dict[str, BaseException]:
    """The platform plugins that failed to load, by name, with their error."""
    return dict(_platform_errors)


def platform_plugins() -> dict[str, type[Platform]]:
    """The out-of-tree platforms installed, by entry-point name."""
    if plugins_disabled():
        return {}
    found: dict[str, type[Platform]] = {}
    with _lock:
        for name, ep in _entry_points(PLATFORMS_GROUP).items():
            try:
                cls = ep.load()
                if not (isinstance(cls, type) and issubclass(cls, Platform)):
                    raise TypeError(f"{ep.value} is not a subclass of ir_op.platforms.Platform")
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # as for kernel sets: a plugin cannot end the process
                if name not in _platform_errors:
                    _platform_errors[name] = e
                    warning_visible_once(
                        _warned,
                        f"platform:{name}",
                        "ir-op: platform plugin %r (%s) failed to load and is skipped: %s: %s",
                        name,
                        ep.value,
                        type(e).__name__,
                        e,
                    )
                continue
            found[name] = cls
    return found


def _reset() -> None:
    """Forget what was loaded (for tests; modules stay imported)."""
    with _lock:
        _loaded.clear()  # _scopes stays: the modules stay imported with what they registered
        _errors.clear()
        _warned.clear()
        _platform_errors.clear()
