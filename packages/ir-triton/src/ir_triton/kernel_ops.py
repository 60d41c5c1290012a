"""Expose a kernel set's functions to ``torch.compile`` as operators of its own namespace.

A kernel set's eager providers call their :class:`~ir_triton.KernelLauncher` directly, the
cheapest path. Code being compiled needs an operator instead: Dynamo cannot trace the launcher,
and an operator that Inductor understands lets it schedule the kernel with the rest of the graph.
:func:`define_kernel_op` gives one:

- with Triton compiling for a GPU: a ``torch.library.triton_op``, whose body launches through
  :meth:`KernelLauncher.traced` (``torch.library.wrap_triton``), so Inductor sees the Triton
  kernels themselves; its fake kernel comes from tracing the body;
- under the interpreter, where ``wrap_triton`` does not apply: an opaque
  ``torch.library.custom_op`` with the given fake kernel.

Eager calls of either operator go through the dispatcher and Triton's own launch (several
microseconds more than the provider's direct path), which is why providers call it only while
:func:`tracing`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ir_triton.kernel_set import interpreting

_is_compiling = torch.compiler.is_compiling
_dispatch_modes = torch._C._len_torch_dispatch_stack


def tracing() -> bool:
    """Whether a provider must call its operator rather than launch directly.

    True while Dynamo traces (``torch.compile``) and while a ``TorchDispatchMode`` is active:
    ``make_fx``, FakeTensor mode, functionalization, the operator-level tools (flop counters,
    debug modes). Those see tensors without data or must record the call, which only an
    operator gives them. About 0.1 us (the two functions are bound once: no attribute lookups).
    """
    return _is_compiling() or _dispatch_modes() > 0


def define_kernel_op(
    qualname: str,
    fn: Callable[..., Any],
    *,
    mutates_args: Sequence[str] = (),
    fake: Callable[..., Any] | None = None,
) -> torch._ops.OpOverload:
    """Define ``torch.ops.<ns>.<name>`` (``qualname = "ns::name"``) running ``fn``.

    ``fn`` has type annotations from which torch infers the schema, launches its kernels with
    :meth:`KernelLauncher.traced`, and writes only the arguments named in ``mutates_args``.
    ``fake`` (same signature; required under the interpreter) computes output metadata without
    running kernels. Returns the operator's default overload.
    """
    namespace, sep, name = qualname.partition("::")
    if not sep or not namespace or not name or "::" in name:
        raise ValueError(f"qualname must look like 'namespace::name', got {qualname!r}")
    if interpreting():
        if fake is None:
            raise ValueError(
                f"{qualname}: under the Triton interpreter the operator is opaque and needs a "
                "fake kernel; pass fake="
            )
        op = torch.library.custom_op(qualname, fn, mutates_args=tuple(mutates_args))
        op.register_fake(fake)
    else:
        torch.library.triton_op(qualname, fn, mutates_args=tuple(mutates_args))
    overload: torch._ops.OpOverload = getattr(getattr(torch.ops, namespace), name).default
    return overload
