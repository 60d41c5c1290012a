"""Triton infrastructure shared by the Triton kernel sets (``pip install 'ir-op[triton]'``).

Kernel sets (ir-kernels-cuda, -rocm, -xpu) write their kernel bodies, tuned for their hardware;
what every one of them needs lives here, once:

- :class:`KernelLauncher`: launches an already-compiled kernel straight from a cache keyed on
  exactly what Triton specializes on, at a fraction of ``kernel[grid](...)``'s host cost, and
  falls back to Triton's own launch whenever that is not possible
  (:func:`set_fast_launch` / ``IR_OP_TRITON_FAST_LAUNCH=0`` turn it off);
  :meth:`KernelLauncher.bind` gives a :class:`BoundLauncher`, the same with the constexprs and
  launch options fixed, cheaper per call.
- :class:`RowTable` and :func:`row_config`: block, rows-per-program and warp choices for
  row-wise kernels (norms, gated activations), with the table tuned for NVIDIA H100-class GPUs;
  :class:`RowLaunch`: a kernel set's table, launch options and streaming cache hint, which the
  vendor-neutral kernel bodies take (:mod:`ir_op.triton.norm` and
  :mod:`ir_op.triton.activation`: RMS norms and gated activations, for the kernel sets that do
  not tune their own; :mod:`ir_op.triton.quant`: dynamic fp8 quantization;
  :mod:`ir_op.triton.norm_quant` and :mod:`ir_op.triton.activation_quant`: RMS norm and SiLU
  fused with static fp8 quantization; :mod:`ir_op.triton.rotary`, with its own
  ``RotaryLaunch``).
- :func:`interpreting` and :func:`triton_unsupported_reason`: the interpreter switch
  (``TRITON_INTERPRET=1``, how CI runs GPU kernels on CPU tensors) and the support check of a
  kernel set (both from :mod:`ir_op.platforms.triton_kernel_set`, which needs no Triton).
- :mod:`ir_op.triton.rows`: argument checks for ``supports_args`` (tensor device, row layout).
- :func:`define_kernel_op`: exposes a kernel-set function to ``torch.compile`` as a
  ``torch.library.triton_op`` (an opaque custom op with a fake kernel under the interpreter),
  and :func:`tracing` says when a provider must call that operator instead of launching.

``ir_op`` itself never imports this module: it is for kernel sets, and importing it without
Triton raises ``ImportError`` naming the extra.
"""

from __future__ import annotations

try:
    import triton as _triton  # noqa: F401  (the check this module exists for)
except ImportError as _error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "ir_op.triton needs Triton, which is not importable here "
        f"({type(_error).__name__}: {_error}); install it with: pip install 'ir-op[triton]' "
        "(Triton publishes Linux wheels)"
    ) from _error

from ir_op.platforms.triton_kernel_set import interpreting, triton_unsupported_reason
from ir_op.triton.configs import NVIDIA_ROW_TABLE, RowConfig, RowLaunch, RowTable, row_config
from ir_op.triton.kernel_ops import define_kernel_op, tracing
from ir_op.triton.launcher import (
    BoundLauncher,
    KernelLauncher,
    LaunchRuntime,
    fast_launch,
    fast_launch_enabled,
    set_fast_launch,
)

__all__ = [
    "NVIDIA_ROW_TABLE",
    "BoundLauncher",
    "KernelLauncher",
    "LaunchRuntime",
    "RowConfig",
    "RowLaunch",
    "RowTable",
    "define_kernel_op",
    "fast_launch",
    "fast_launch_enabled",
    "interpreting",
    "row_config",
    "set_fast_launch",
    "tracing",
    "triton_unsupported_reason",
]
