"""Programmatic dependent launch (PDL): :func:`wait_for_previous_kernel` inside the shared kernels,
and :class:`PdlSwitch`, a kernel set's decision to use it.

A decode step is a chain of small kernels, each a few microseconds or less: the GPU's gap between
the end of one kernel and the start of the next (launch, block scheduling, ramp-up) is a large
share of each. On NVIDIA GPUs from sm_90, a kernel launched with the ``launch_pdl`` option (the
*programmatic stream serialization* attribute) may start while the previous kernel in its stream
is finishing; it must wait (``griddepcontrol.wait``) before it touches memory that kernel may
write or read. A shared kernel body takes a ``USE_PDL`` constexpr and, when it is true, calls
:func:`wait_for_previous_kernel` before its first load or store, so its results are those of a
plain launch whatever the previous kernel does; it then lets the next kernel launch
(``griddepcontrol.launch_dependents``). With ``USE_PDL`` false (other vendors, traced launches,
GPUs before sm_90) the call is compiled out. Launches that ``torch.compile`` traces do not use it
(Inductor launches those kernels).

Whether a kernel set's eager launches use PDL is its own decision
(:attr:`~ir_triton.configs.RowLaunch.pdl`); a :class:`PdlSwitch` makes it from the GPU, Triton
and an environment variable of the kernel set's (ir-kernels-cuda: ``IR_KERNELS_CUDA_PDL``).
"""

from __future__ import annotations

import os

import torch
import triton

from ir_triton.kernel_set import interpreting

try:  # Triton 3.4+ with its NVIDIA language extras
    from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
except ImportError:  # pragma: no cover - an older Triton or a vendor's fork: no PDL
    gdc_launch_dependents = gdc_wait = None

PDL_INSTRUCTIONS = gdc_wait is not None
"""Whether this Triton has the ``griddepcontrol`` instructions (a kernel set must not turn PDL
on without them)."""

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@triton.jit
def wait_for_previous_kernel():  # type: ignore[no-untyped-def]
    """Wait until the previous kernel in the stream has finished and its writes are visible,
    then let the next kernel launch. A no-op for kernels launched without PDL."""
    gdc_wait()
    gdc_launch_dependents()


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


class PdlSwitch:
    """Whether a kernel set's eager launches use PDL: calling it answers (a
    :attr:`~ir_triton.configs.RowLaunch.pdl`), deciding on first use from the environment
    variable ``env_var`` (on unless ``0``/``false``/``no``/``off``) and
    :func:`pdl_unsupported_reason`, then cached in :attr:`enabled` (``None``: not decided yet;
    deciding needs the CUDA runtime, so it waits for the first launch)."""

    __slots__ = ("enabled", "env_var")

    def __init__(self, env_var: str) -> None:
        self.env_var = env_var
        self.enabled: bool | None = None

    def from_env(self) -> bool:
        """The environment's switch (on when unset)."""
        value = os.environ.get(self.env_var, "1").strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError(
            f"{self.env_var}={value!r} is not a switch; use one of {', '.join(_TRUE + _FALSE)}"
        )

    def __call__(self) -> bool:
        enabled = self.enabled
        if enabled is None:
            enabled = self.enabled = self.from_env() and pdl_unsupported_reason() is None
        return enabled

    def set(self, enabled: bool | None) -> None:
        """Use PDL (where supported) or not for the rest of the process; ``None`` decides again
        from the environment and the hardware on the next launch."""
        if enabled is not None and not isinstance(enabled, bool):
            raise TypeError(f"PDL must be True, False or None, got {enabled!r}")
        if enabled and pdl_unsupported_reason() is not None:
            raise ValueError(f"PDL is not supported here: {pdl_unsupported_reason()}")
        self.enabled = enabled
