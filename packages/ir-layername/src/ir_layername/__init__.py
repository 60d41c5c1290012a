"""ir-layername: a layer-name value type that torch.compile hoists into a graph input.

Custom ops that take a layer's name bake the string into the compiled graph, so identical layers
compile separately. A hoisted opaque ``LayerName`` lets them share one compiled artifact.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ir-layername")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
