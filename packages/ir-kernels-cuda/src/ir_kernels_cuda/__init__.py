"""ir-kernels-cuda: the NVIDIA GPU kernel set for ir-op (provider \"cuda\").

ir-op imports this module through its ``ir_op.kernels`` entry point; importing it registers the
providers. Nothing else imports it by name.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ir-kernels-cuda")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
