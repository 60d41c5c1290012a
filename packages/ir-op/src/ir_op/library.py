"""The ``torch.library`` namespace that IR ops are defined in (``torch.ops.ir``).

Torch cannot undefine an operator, so tests that register throwaway ops swap this namespace for a
unique one with :func:`use_namespace` instead of polluting ``torch.ops.ir``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.library import Library

DEFAULT_NAMESPACE = "ir"

_library: Library | None = None


def _new_library(namespace: str) -> Library:
    return Library(namespace, "FRAGMENT")  # type: ignore[no-untyped-call]


def get_library() -> Library:
    """Return the library that new ops are defined in, creating ``ir`` on first use."""
    global _library
    if _library is None:
        _library = _new_library(DEFAULT_NAMESPACE)
    return _library


def ops_namespace(library: Library) -> Any:
    """Return ``torch.ops.<namespace>`` for ``library``."""
    return getattr(torch.ops, library.ns)


@contextlib.contextmanager
def use_namespace(namespace: str) -> Iterator[Library]:
    """Define new ops in ``torch.ops.<namespace>`` inside the block (for tests)."""
    global _library
    old = _library
    _library = _new_library(namespace)
    try:
        yield _library
    finally:
        _library = old


def define_operator(
    library: Library, qualified_name: str, schema: str, kernel: Callable[..., Any]
) -> None:
    """Define ``<ns>::<qualified_name><schema>`` with ``kernel`` for every device.

    CompositeExplicitAutograd: one kernel for every device, and AOTAutograd keeps the node whole
    instead of decomposing it. The fake (meta) kernel is registered separately.
    """
    library.define(qualified_name + schema)  # type: ignore[no-untyped-call]
    library.impl(qualified_name, kernel, "CompositeExplicitAutograd")  # type: ignore[no-untyped-call]
