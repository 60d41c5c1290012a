"""ir-kernels-xpu: the Intel GPU kernel set for ir-op (provider ``"xpu"``).

ir-op imports this module through its ``ir_op.kernels`` entry point; importing it registers the
``xpu`` provider of every op in :data:`PROVIDED_OPS`: Triton kernels for Intel GPUs
(``torch.xpu``), launched with Xe sub-group and register-file choices. Nothing else imports it by
name. Where the provider cannot run (another platform, no Triton) it is registered as
unsupported with the reason, which ``ir-op info`` shows.
"""

from importlib.metadata import PackageNotFoundError, version

from ir_kernels_xpu._support import KERNEL_SET, PROVIDED_OPS

try:
    __version__ = version("ir-kernels-xpu")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

if KERNEL_SET.kernels_unavailable_reason() is None:
    from ir_kernels_xpu import (  # noqa: F401  (importing registers)
        activation,
        composite,
        norm,
        quant,
        rotary,
    )
else:
    KERNEL_SET.register_unsupported()

__all__ = ["PROVIDED_OPS", "__version__"]
