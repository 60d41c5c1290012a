"""Patches of stock Inductor that ir-compile needs, each guarded and idempotent.

- :func:`install` (``prefixes=...``): the fallback allow-list extended to operator namespaces
  (:mod:`ir_compile.inductor_patches.fallback_allow_list`); ``import ir_compile`` arms it with
  :data:`DEFAULT_PREFIXES`.
- :func:`install_opaque_patches`: fixes for hoisted opaque arguments such as ``LayerName``
  (:mod:`ir_compile.inductor_patches.opaque`), applied where the installed torch needs them.
"""

from ir_compile.inductor_patches.fallback_allow_list import (
    DEFAULT_PREFIXES,
    PrefixAllowList,
    install,
    installed,
    uninstall,
)
from ir_compile.inductor_patches.opaque import install as install_opaque_patches

__all__ = [
    "DEFAULT_PREFIXES",
    "PrefixAllowList",
    "install",
    "install_opaque_patches",
    "installed",
    "uninstall",
]
