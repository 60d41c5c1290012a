"""ir-compile: IR ops as first-class citizens of ``torch.compile``.

The compiled graph keeps one opaque node per IR op (torch wrap on); fusion passes rewrite
across ops whatever their providers, and a late lowering pass replaces each node by the traced
implementation of the provider its dispatch selects. Entry points:

- ``torch.compile(model, backend=ir_compile.backend(priority=None, fusions=None, mode=None,
  options=None))`` (``mode`` and ``options`` as ``torch.compile`` knows them);
- :func:`install` for engines that own their Inductor config.

``import ir_compile`` arms Inductor's fallback allow-list for the IR namespaces
(:mod:`ir_compile.inductor_patches`) and imports no Inductor module: the backend, the pass
manager and the passes load on first use.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ir_compile import inductor_patches
from ir_compile.report import CompileReport

try:
    __version__ = version("ir-compile")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from ir_compile.fusion import FUSION_NAMES
    from ir_compile.inductor_backend import IrCompileBackend, backend, install
    from ir_compile.pass_manager import IrPassManager

_LAZY = {
    "FUSION_NAMES": "ir_compile.fusion",
    "IrCompileBackend": "ir_compile.inductor_backend",
    "IrPassManager": "ir_compile.pass_manager",
    "backend": "ir_compile.inductor_backend",
    "install": "ir_compile.inductor_backend",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ir_compile' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


inductor_patches.install()

__all__ = [
    "FUSION_NAMES",
    "CompileReport",
    "IrCompileBackend",
    "IrPassManager",
    "__version__",
    "backend",
    "inductor_patches",
    "install",
]
