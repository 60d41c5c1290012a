"""The torch wrap flag: whether calling an op goes through its ``torch.ops`` operator.

On (the default), ``rms_norm(x, ...)`` calls ``torch.ops.ir.rms_norm.default``: one opaque node
under ``torch.fx``, ``make_fx`` and ``torch.compile``, which ir-compile can fuse and lower. Off,
the call dispatches in Python straight to the chosen implementation, which skips the
dispatcher's per-call cost in eager mode and lets Dynamo inline the implementation.

``maybe_inplace`` is the exception, with the flag on: PyTorch forbids a custom operator to return
its inputs (deprecated; an error when ``CI`` is set), so its operator computes out of place and
only traced calls (:func:`is_traced_call`) take it; an eager call runs the in-place provider
directly.

The flag is context-local inside :func:`enable_torch_wrap` blocks (per thread and per asyncio
task, see :mod:`ir_op.context`) and process-wide through :func:`set_default_torch_wrap`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch

from ir_op.context import current_overrides, torch_wrap_block


class _TorchWrapFlag:
    """A mutable holder, so the hot path reads one attribute instead of a module global."""

    __slots__ = ("enabled",)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled


TORCH_WRAP = _TorchWrapFlag(True)
"""The process default, which :func:`set_default_torch_wrap` sets; a context's
:func:`enable_torch_wrap` block takes precedence (see :mod:`ir_op.context`)."""


def _check_bool(enable: object) -> bool:
    if not isinstance(enable, bool):
        raise TypeError(f"torch wrap flag must be True or False, got {enable!r}")
    return enable


def torch_wrap_enabled() -> bool:
    """Return whether op calls in this thread or task currently go through their torch operator.

    The innermost :func:`enable_torch_wrap` block of this context decides; outside every block,
    the process default does.
    """
    overrides = current_overrides()
    if overrides is None or overrides.torch_wrap is None:
        return TORCH_WRAP.enabled
    return overrides.torch_wrap


def set_default_torch_wrap(enable: bool = True) -> None:
    """Set the torch wrap flag for the rest of the process.

    Every thread and task sees it, except inside its own :func:`enable_torch_wrap` blocks.
    """
    TORCH_WRAP.enabled = _check_bool(enable)


@contextlib.contextmanager
def enable_torch_wrap(enable: bool = True) -> Iterator[None]:
    """Set the torch wrap flag inside a ``with`` block, for this thread or asyncio task only.

    Other threads and tasks keep theirs; the previous value returns on exit or error.
    """
    with torch_wrap_block(_check_bool(enable)):
        yield


_TRACED_TYPES = (torch.Tensor, torch.fx.Proxy)


def is_traced_call(values: Iterable[object]) -> bool:
    """Whether a call with these argument values is being traced rather than run.

    Traced: under Dynamo, under a dispatch mode (``make_fx``, ``FakeTensorMode``, export), or
    with a tensor subclass (a FakeTensor, a DTensor) or a ``torch.fx`` proxy among the values.
    Such a call must reach the torch operator to leave a node in the graph; a plain eager call
    need not. Torch-function modes (``with torch.device(...)``) do not trace and are ignored.
    On the eager path of every ``maybe_inplace`` call (wrap on), hence the plain loop.
    """
    if torch.compiler.is_compiling() or torch._C._len_torch_dispatch_stack():
        return True
    for value in values:
        kind = type(value)
        if kind is torch.Tensor or kind is torch.nn.Parameter:
            continue
        if isinstance(value, _TRACED_TYPES):
            return True
    return False
