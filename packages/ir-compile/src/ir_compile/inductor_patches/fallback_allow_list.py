"""Inductor's fallback allow-list, extended to whole operator namespaces by prefix.

When Inductor meets an operator it has no lowering for, it makes a fallback kernel (the op runs
eagerly inside the compiled code). For a name outside ``FALLBACK_ALLOW_LIST`` it takes the
"implicit fallback" path, which first logs the operator with every input rendered as text
(stock torch 2.10 and 2.11 build that text whether or not the log is shown); on a deep graph each
input's text spells out its whole Inductor IR tree, which can take seconds per node. Names on
the allow-list skip straight to the fallback.

:class:`PrefixAllowList` wraps the original set: a name starting with one of its prefixes
(``ir::``, ``ir_cuda::``, ``ir_rocm::``, ``ir_xpu::``, and the namespace IR ops are being defined
in, should a test have swapped it) is a member; prefixes only match at the start, never as a
substring. Everything else (other names, ``add``, ``discard``, iteration, ``len``, ``repr``,
other attributes) goes to the original set. For an allowed name the wrapper also gives the
operator the layout constraint that the implicit path would have (the default one for custom
ops), so the only difference is the skipped log line.

:func:`install` is idempotent and lazy: if ``torch._inductor.lowering`` is not imported yet (it
is a heavy import), a meta-path finder patches it as soon as its code has run, and only then
removes itself; a ``importlib.util.find_spec`` of the module before that, which does not run it,
leaves the finder in place. Both ``torch._inductor.lowering.FALLBACK_ALLOW_LIST`` and the copy
``torch._inductor.graph`` imported are rebound.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType
from typing import Any

import torch

logger = logging.getLogger(__name__)

DEFAULT_PREFIXES: tuple[str, ...] = ("ir::", "ir_cuda::", "ir_rocm::", "ir_xpu::")
"""The IR ops' namespace and the kernel sets' namespaces."""

LOWERING_MODULE = "torch._inductor.lowering"
GRAPH_MODULE = "torch._inductor.graph"
_NAME = "FALLBACK_ALLOW_LIST"

_lock = threading.RLock()
_wanted_prefixes: list[str] = []


def _check_prefixes(prefixes: Iterable[str]) -> tuple[str, ...]:
    if isinstance(prefixes, str):
        raise TypeError(f"prefixes must be a collection of strings, got the string {prefixes!r}")
    checked = tuple(prefixes)
    for prefix in checked:
        if not isinstance(prefix, str) or not prefix.endswith("::") or len(prefix) < 3:
            raise ValueError(
                f"fallback allow-list prefix {prefix!r} must be an operator namespace followed "
                "by '::', e.g. 'ir::'"
            )
    return checked


def _ir_op_namespace_prefix() -> str:
    from ir_op.library import get_library

    return f"{get_library().ns}::"


class PrefixAllowList:
    """``FALLBACK_ALLOW_LIST`` with every name under its prefixes as a member (see module doc)."""

    def __init__(self, original: Any, prefixes: Sequence[str]) -> None:
        self._original = original
        self._prefixes: tuple[str, ...] = _check_prefixes(prefixes)

    @property
    def original(self) -> Any:
        """The set this proxy wraps."""
        return self._original

    @property
    def prefixes(self) -> tuple[str, ...]:
        return self._prefixes

    def add_prefixes(self, prefixes: Iterable[str]) -> None:
        new = [p for p in _check_prefixes(prefixes) if p not in self._prefixes]
        self._prefixes = (*self._prefixes, *new)

    def matches_prefix(self, name: object) -> bool:
        """Whether ``name`` starts with one of the prefixes (or the IR ops' namespace)."""
        return isinstance(name, str) and name.startswith(
            (*self._prefixes, _ir_op_namespace_prefix())
        )

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str) and self.matches_prefix(name):
            _keep_default_layout_constraint(name)
            return True
        return name in self._original

    def __iter__(self) -> Iterator[Any]:
        return iter(self._original)

    def __len__(self) -> int:
        return len(self._original)

    def __repr__(self) -> str:
        return repr(self._original)

    def add(self, name: Any) -> None:
        self._original.add(name)

    def discard(self, name: Any) -> None:
        self._original.discard(name)

    def __getattr__(self, attribute: str) -> Any:
        # Only reached for attributes the proxy does not define itself.
        return getattr(self._original, attribute)


def _keep_default_layout_constraint(name: str) -> None:
    """Give ``name``'s overloads the layout constraint Inductor's implicit fallback would."""
    lowering = sys.modules.get(LOWERING_MODULE)
    if lowering is None:
        return
    from torch._library.utils import get_layout_constraint_tag

    namespace, _, op_name = name.partition("::")
    try:
        packet = getattr(getattr(torch.ops, namespace), op_name)
    except (AttributeError, RuntimeError):
        return
    constraints = lowering._maybe_layout_constraints
    for overload_name in packet.overloads():
        overload = getattr(packet, overload_name)
        if overload in constraints or get_layout_constraint_tag(overload, with_default=False):
            continue
        default = get_layout_constraint_tag(overload, with_default=True)
        constraint = lowering.tag_to_layout_constraint(default)
        if constraint is not None:
            lowering.add_layout_constraint(overload, constraint)


# ---------------------------------------------------------------------------------------------
# Applying the patch to the modules


def _patch(lowering: ModuleType) -> PrefixAllowList:
    """Wrap ``lowering``'s allow-list (once) and rebind it wherever Inductor reads it."""
    with _lock:
        current = getattr(lowering, _NAME)
        if isinstance(current, PrefixAllowList):
            current.add_prefixes(_wanted_prefixes)
            proxy = current
        else:
            proxy = PrefixAllowList(current, _wanted_prefixes)
            setattr(lowering, _NAME, proxy)
            logger.debug("Inductor fallback allow-list extended to %s", proxy.prefixes)
        graph = sys.modules.get(GRAPH_MODULE)
        if graph is not None and getattr(graph, _NAME, None) is not proxy:
            setattr(graph, _NAME, proxy)
        return proxy


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then patches the module it made."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # Leave the module as if loaded normally, then patch it.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        _patch(module)
        _remove_finder()

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._loader, attribute)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Hands out specs of the lowering module whose loader patches it after running it.

    Stays on ``sys.meta_path`` until the module has really been executed: ``find_spec`` alone
    (``importlib.util.find_spec``) executes nothing.
    """

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != LOWERING_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and not isinstance(spec.loader, _PatchingLoader):
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


_finder: _PatchOnImport | None = None


def _remove_finder() -> None:
    global _finder
    with _lock:
        if _finder is not None and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        _finder = None


def install(prefixes: Iterable[str] = DEFAULT_PREFIXES) -> PrefixAllowList | None:
    """Make operators under ``prefixes`` allow-listed fallbacks (idempotent; adds prefixes).

    Returns the proxy when ``torch._inductor.lowering`` is already imported (it is patched now),
    else ``None``: it is patched when it is imported.
    """
    global _finder
    checked = _check_prefixes(prefixes)
    with _lock:
        _wanted_prefixes.extend(p for p in checked if p not in _wanted_prefixes)
        lowering = sys.modules.get(LOWERING_MODULE)
        if lowering is not None and hasattr(lowering, _NAME):
            return _patch(lowering)
        if _finder is None:
            _finder = _PatchOnImport()
            sys.meta_path.insert(0, _finder)
        return None


def uninstall() -> None:
    """Restore the original allow-list and forget the prefixes (for tests)."""
    with _lock:
        _remove_finder()
        _wanted_prefixes.clear()
        lowering = sys.modules.get(LOWERING_MODULE)
        if lowering is None:
            return
        current = getattr(lowering, _NAME, None)
        if not isinstance(current, PrefixAllowList):
            return
        original = current.original
        setattr(lowering, _NAME, original)
        graph = sys.modules.get(GRAPH_MODULE)
        if graph is not None and getattr(graph, _NAME, None) is current:
            setattr(graph, _NAME, original)


def installed() -> PrefixAllowList | None:
    """The proxy in ``torch._inductor.lowering`` if it is imported and patched, else ``None``."""
    lowering = sys.modules.get(LOWERING_MODULE)
    current = getattr(lowering, _NAME, None) if lowering is not None else None
    return current if isinstance(current, PrefixAllowList) else None


def armed() -> bool:
    """Whether the lowering module will be patched when it is imported."""
    return _finder is not None and _finder in sys.meta_path
