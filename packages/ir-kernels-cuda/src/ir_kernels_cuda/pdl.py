"""Programmatic dependent launch (PDL): a kernel's launch overlaps the end of the previous one.

A decode step is a chain of small kernels, each a few microseconds or less: the GPU's gap between
the end of one kernel and the start of the next (launch, block scheduling, ramp-up) is a large
share of each. On Hopper (sm_90) and later, a kernel launched with the *programmatic stream
serialization* attribute may start before the previous kernel in its stream has finished, once
every block of that kernel has signalled (or exited); it must then wait, with
``griddepcontrol.wait``, before touching memory that the previous kernel may write or read.

The eager launches of this kernel set use it where the GPU and Triton support it: each kernel
first waits for the previous kernel (before any load or store, so the results are those of a
plain launch, whatever that kernel does), then lets the next kernel launch
(``griddepcontrol.launch_dependents``): :func:`ir_triton.pdl.wait_for_previous_kernel`, which
the shared kernels of ``ir_triton`` call too when their ``RowLaunch`` says so
(:data:`~ir_kernels_cuda.launch.CUDA_ROW_LAUNCH`). Kernels launched without the attribute,
and GPUs before sm_90, never see these instructions (the ``USE_PDL`` constexpr compiles them
out). Launches that ``torch.compile`` traces do not use it (Inductor launches those kernels).

``IR_KERNELS_CUDA_PDL=0`` (or :func:`set_pdl`) turns it off.
"""

from __future__ import annotations

import os

import torch
import triton

from ir_triton import interpreting
from ir_triton.pdl import PDL_INSTRUCTIONS, wait_for_previous_kernel

__all__ = ["PDL", "PDL_ENV_VAR", "pdl_enabled", "set_pdl", "wait_for_previous_kernel"]

PDL_ENV_VAR = "IR_KERNELS_CUDA_PDL"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class _PdlSwitch:
    """``enabled`` is ``None`` until the first launch decides (that needs the CUDA runtime)."""

    __slots__ = ("enabled",)

    def __init__(self) -> None:
        self.enabled: bool | None = None


PDL = _PdlSwitch()


def _from_env() -> bool:
    value = os.environ.get(PDL_ENV_VAR, "1").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{PDL_ENV_VAR}={value!r} is not a switch; use one of {', '.join(_TRUE + _FALSE)}"
    )


def pdl_unsupported_reason() -> str | None:
    """Why launches cannot use PDL here, or ``None`` when they can."""
    if interpreting():
        return "Triton interprets (TRITON_INTERPRET=1)"
    if not PDL_INSTRUCTIONS:
        return f"Triton {triton.__version__} has no griddepcontrol instructions"
    try:
        from triton.backends.nvidia.compiler import CUDAOptions
    except ImportError:
        return "Triton has no NVIDIA backend"
    if "launch_pdl" not in getattr(CUDAOptions, "__dataclass_fields__", {}):
        return f"Triton {triton.__version__} has no launch_pdl option"
    if not torch.cuda.is_available():
        return "no CUDA device"
    for device in range(torch.cuda.device_count()):
        if torch.cuda.get_device_capability(device) < (9, 0):
            name = torch.cuda.get_device_name(device)
            return f"device {device} ({name}) is older than sm_90"
    return None


def pdl_enabled() -> bool:
    """Whether eager launches use PDL (decided on first use, then cached)."""
    enabled = PDL.enabled
    if enabled is None:
        enabled = PDL.enabled = _from_env() and pdl_unsupported_reason() is None
    return enabled


def set_pdl(enabled: bool | None) -> None:
    """Use PDL (where supported) or not for the rest of the process; ``None`` decides again
    from the environment and the hardware on the next launch."""
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"PDL must be True, False or None, got {enabled!r}")
    if enabled and pdl_unsupported_reason() is not None:
        raise ValueError(f"PDL is not supported here: {pdl_unsupported_reason()}")
    PDL.enabled = enabled
