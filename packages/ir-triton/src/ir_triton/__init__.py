"""ir-triton: the Triton building blocks of ir-op's kernel sets.

ir-op defines the ops and dispatches; the kernel sets (ir-kernels-cuda, -rocm, -xpu) register
providers for them. What every Triton kernel set needs lives here, once, so that a kernel change
moves this package and the kernel sets, never the op API that engines pin:

- :class:`TritonKernelSet` (:mod:`ir_triton.kernel_set`): where a kernel set runs (its platform,
  real or emulated while Triton interprets), and its providers registered unsupported, with the
  reason, where Triton cannot run. It needs no Triton, so a kernel set can always load.
- :class:`KernelLauncher` (:mod:`ir_triton.launcher`): launches an already-compiled kernel
  straight from a cache keyed on exactly what Triton specializes on, at a fraction of
  ``kernel[grid](...)``'s host cost, falling back to Triton's own launch whenever that is not
  possible (:func:`set_fast_launch` / ``IR_OP_TRITON_FAST_LAUNCH=0`` turn it off);
  :meth:`KernelLauncher.bind` gives a :class:`BoundLauncher`, cheaper per call.
- :class:`RowTable`, :class:`RowLaunch` (:mod:`ir_triton.configs`): a kernel set's launch
  configuration of the row kernels (blocks, rows per program, warps, load hints, PDL). What
  differs between vendors is this configuration, never the kernel body.
- :mod:`ir_triton.kernels`: the one Triton body of each op with its ``*Providers`` class, which
  a kernel set instantiates with its launch configuration and registers.
- :func:`define_kernel_op` and :func:`tracing` (:mod:`ir_triton.kernel_ops`): a kernel set's
  function as a ``torch.library.triton_op`` for ``torch.compile``, and when a provider must call
  that operator instead of launching.
- :mod:`ir_triton.testing`: the tests every kernel set runs (registration, shared bodies).

This package declares no ``triton`` requirement: ROCm and XPU builds of torch bring their own
Triton, and each kernel set declares the one it needs. Importing ``ir_triton`` and its
infrastructure modules needs no Triton (they import it when they launch); the kernel bodies
(:mod:`ir_triton.kernels`) and :mod:`ir_triton.pdl` do, which is why a kernel set imports them
only after :meth:`TritonKernelSet.kernels_unavailable_reason` says they can be defined.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ir_triton.configs import NVIDIA_ROW_TABLE, RowConfig, RowLaunch, RowTable, row_config
from ir_triton.kernel_ops import define_kernel_op, tracing
from ir_triton.kernel_set import TritonKernelSet, interpreting, triton_unsupported_reason
from ir_triton.launcher import (
    BoundLauncher,
    KernelLauncher,
    LaunchRuntime,
    fast_launch,
    fast_launch_enabled,
    set_fast_launch,
)

try:
    __version__ = version("ir-triton")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "NVIDIA_ROW_TABLE",
    "BoundLauncher",
    "KernelLauncher",
    "LaunchRuntime",
    "RowConfig",
    "RowLaunch",
    "RowTable",
    "TritonKernelSet",
    "__version__",
    "define_kernel_op",
    "fast_launch",
    "fast_launch_enabled",
    "interpreting",
    "row_config",
    "set_fast_launch",
    "tracing",
    "triton_unsupported_reason",
]
