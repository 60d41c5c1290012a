"""ir-compile: torch.compile passes for ir ops (lowering, fusion, Inductor patches)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ir-compile")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
