"""Entry-point plugins: kernel sets (``ir_op.kernels``) and platforms (``ir_op.platforms``).

ir-op never names a kernel set. A kernel set is a distribution that declares::

    [project.entry-points."ir_op.kernels"]
    cuda = "ir_kernels_cuda"        # name = kernel set, value = the module that registers it

and an out-of-tree platform one that declares ``[project.entry-points."ir_op.platforms"]``
with a :class:`~ir_op.platforms.base.Platform` subclass as value. ``IR_OP_DISABLE_PLUGINS=1``
loads neither. A plugin that fails to import is logged once and recorded; the host keeps
working with the providers that did load.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

from ir_op._logging import logger
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
_errors: dict[str, Exception] = {}
_platform_errors: dict[str, Exception] = {}


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
    """Import the installed kernel sets (only ``names``, if given). Idempotent."""
    if plugins_disabled():
        return
    with _lock:
        for name, ep in _entry_points(KERNELS_GROUP).items():
            if (names is not None and name not in names) or name in _loaded or name in _errors:
                continue
            try:
                module: ModuleType = ep.load()
            except Exception as e:
                _errors[name] = e
                logger.warning(
                    "ir-op: kernel set %r (%s) failed to import and is skipped: %s: %s",
                    name,
                    ep.value,
                    type(e).__name__,
                    e,
                )
                continue
            dist_name, version = _distribution(ep)
            _loaded[name] = LoadedKernelSet(name, module.__name__, dist_name, version)


def loaded_kernel_sets() -> dict[str, LoadedKernelSet]:
    """The kernel sets imported so far, by name."""
    return dict(_loaded)


def kernel_set_errors() -> dict[str, Exception]:
    """The kernel sets that failed to import, by name, with their error."""
    return dict(_errors)


def platform_plugin_errors() -> dict[str, Exception]:
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
            except Exception as e:
                if name not in _platform_errors:
                    _platform_errors[name] = e
                    logger.warning(
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
        _loaded.clear()
        _errors.clear()
        _platform_errors.clear()
