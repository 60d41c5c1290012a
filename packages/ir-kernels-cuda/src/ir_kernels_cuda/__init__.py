"""ir-kernels-cuda: the NVIDIA GPU kernel set for ir-op (provider \"cuda\").

ir-op imports this module through its ``ir_op.kernels`` entry point; importing it registers the
``cuda`` provider of every op it implements (:data:`PROVIDED_OPS`): the shared Triton kernels
of ``ir_triton.kernels``, launched for NVIDIA GPUs (:mod:`ir_kernels_cuda.launch`). Nothing else
imports it by name. Where the provider cannot run (another platform, no Triton), it is
registered as unsupported with the reason, which ``ir-op info`` shows.
"""

from importlib.metadata import PackageNotFoundError, version

from ir_kernels_cuda._support import KERNEL_SET, PROVIDED_OPS

try:
    __version__ = version("ir-kernels-cuda")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

if KERNEL_SET.kernels_unavailable_reason() is None:
    # importing registers providers
    from ir_kernels_cuda import activation, composite, norm, quant, rotary  # noqa: F401
else:  # the kernels cannot be defined: the providers say why they do nothing
    KERNEL_SET.register_unsupported()

__all__ = ["PROVIDED_OPS", "__version__"]
