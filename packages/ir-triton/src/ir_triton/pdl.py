"""Programmatic dependent launch (PDL) inside the shared kernels: :func:`wait_for_previous_kernel`.

On NVIDIA GPUs from sm_90, a kernel launched with the ``launch_pdl`` option may start while the
previous kernel in its stream is finishing; it must wait (``griddepcontrol.wait``) before it
touches memory that kernel may write or read. A shared kernel body takes a ``USE_PDL``
constexpr and, when it is true, calls :func:`wait_for_previous_kernel` before its first load, so
its results are those of a plain launch whatever the previous kernel does. With ``USE_PDL``
false (other vendors, traced launches) the call is compiled out.

Whether a kernel set's eager launches use PDL is its own decision
(:attr:`~ir_triton.configs.RowLaunch.pdl`); ir-kernels-cuda makes it from the GPU, Triton
and an environment switch.
"""

from __future__ import annotations

import triton

try:  # Triton 3.4+ with its NVIDIA language extras
    from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
except ImportError:  # pragma: no cover - an older Triton or a vendor's fork: no PDL
    gdc_launch_dependents = gdc_wait = None

PDL_INSTRUCTIONS = gdc_wait is not None
"""Whether this Triton has the ``griddepcontrol`` instructions (a kernel set must not turn PDL
on without them)."""


@triton.jit
def wait_for_previous_kernel():  # type: ignore[no-untyped-def]
    """Wait until the previous kernel in the stream has finished and its writes are visible,
    then let the next kernel launch. A no-op for kernels launched without PDL."""
    gdc_wait()
    gdc_launch_dependents()
