"""ir-kernels-rocm: the AMD GPU kernel set for ir-op (providers ``"rocm"`` and ``"aiter"``).

ir-op imports this module through its ``ir_op.kernels`` entry point; importing it registers

- ``rocm``: Triton kernels written for AMD Instinct GPUs (64-wide wavefronts; the fp8 formats
  of MI300 and MI350) for every op in :data:`PROVIDED_OPS`;
- ``aiter``: AMD's AITER library for ``rms_norm`` and ``fused_add_rms_norm``, where ``aiter``
  imports (:mod:`ir_kernels_rocm.aiter_provider`).

Nothing else imports it by name. Where a provider cannot run (another platform, no Triton, no
AITER) it is registered as unsupported with the reason, which ``ir-op info`` shows.
"""

from importlib.metadata import PackageNotFoundError, version

from ir_kernels_rocm._support import KERNEL_SET, PROVIDED_OPS
from ir_op.platforms.rocm import AITER_PROVIDER

try:
    __version__ = version("ir-kernels-rocm")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

if KERNEL_SET.kernels_unavailable_reason() is None:
    from ir_kernels_rocm import (  # noqa: F401  (importing registers)
        activation,
        composite,
        norm,
        quant,
        rotary,
    )
    from ir_kernels_rocm.aiter_provider import register as _register_aiter

    _register_aiter()
else:
    # The aiter provider's argument checks come from ir_triton too. ROCm builds of torch
    # always bring Triton, so this is a broken install, not a configuration.
    KERNEL_SET.register_unsupported()
    KERNEL_SET.register_unsupported(AITER_PROVIDER, ("rms_norm", "fused_add_rms_norm"))

__all__ = ["PROVIDED_OPS", "__version__"]
