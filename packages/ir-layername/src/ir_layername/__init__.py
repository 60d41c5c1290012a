"""ir-layername: a layer-name value type that torch.compile hoists into a graph input.

Custom ops that take a layer's name bake the string into the compiled graph, so identical layers
compile separately. A hoisted opaque ``LayerName`` makes the name a graph input, and identical
layers share one compiled artifact. Where torch cannot hoist it, everything stays ``str``.
"""

from importlib.metadata import PackageNotFoundError, version

from ir_layername.layer_name import HAS_OPAQUE_TYPE, OPAQUE_SUPPORT, UNSUPPORTED_REASON, LayerName
from ir_layername.names import (
    ENV_VAR,
    USE_LAYERNAME,
    LayerNameType,
    encode_layer_name,
    resolve_layer_name,
)

try:
    __version__ = version("ir-layername")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "ENV_VAR",
    "HAS_OPAQUE_TYPE",
    "OPAQUE_SUPPORT",
    "UNSUPPORTED_REASON",
    "USE_LAYERNAME",
    "LayerName",
    "LayerNameType",
    "__version__",
    "encode_layer_name",
    "resolve_layer_name",
]
