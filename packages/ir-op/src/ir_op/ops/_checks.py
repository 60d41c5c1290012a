"""Argument checks shared by the ops' validators (``register_op(validate=...)``).

A validator runs before dispatch on every ``ops.<name>(...)`` call, whichever provider then
computes it, so a bad argument gets the same ``TypeError``/``ValueError`` everywhere instead of
a kernel's raw error or silent nonsense. Validators sit on the eager hot path: each tests the
common, valid case with a few attribute reads and comparisons first, and only builds a message
(in the ``reject_*`` helpers here) once something is wrong. They read shapes and dtypes only,
so FakeTensors and symbolic shapes under ``torch.compile`` pass through them the same way.
"""

from __future__ import annotations

import math
from typing import NoReturn

import torch
from torch import Tensor

INF = math.inf

FLOATING_DTYPES: frozenset[torch.dtype] = frozenset(
    d for d in vars(torch).values() if isinstance(d, torch.dtype) and d.is_floating_point
)
"""Every floating-point dtype torch has: ``t.dtype in FLOATING_DTYPES`` is the fast form of
``t.is_floating_point()`` (one attribute read and a set lookup instead of a method call)."""

NOT_ARGUMENTS: tuple[type[Exception], ...] = (AttributeError, IndexError, TypeError)
"""What a validator's fast path catches from reading a non-tensor (or a 0-dim ``x``) as a
tensor; the complete check that follows then names the argument."""


def describe(value: object) -> str:
    """A short description of a bad value for an error message (tensors by dtype and shape)."""
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {list(value.shape)}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def reject_float_tensor(op: str, name: str, value: object, min_dim: int = 1) -> NoReturn:
    """Raise for ``value`` that is not a floating-point tensor of at least ``min_dim`` dims."""
    dims = f" with at least {min_dim} dimension{'s' if min_dim > 1 else ''}" if min_dim else ""
    wanted = f"a floating-point tensor{dims}"
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be {wanted}, got {describe(value)}")
    raise ValueError(f"{op}: {name} must be {wanted}, got {describe(value)}")


def check_float_tensor(op: str, name: str, value: object, min_dim: int = 1) -> None:
    """Raise unless ``value`` is a floating-point tensor with at least ``min_dim`` dimensions."""
    if not (isinstance(value, Tensor) and value.is_floating_point() and value.dim() >= min_dim):
        reject_float_tensor(op, name, value, min_dim)


def reject_weight(op: str, weight: object, x: Tensor) -> NoReturn:
    wanted = f"None or a floating-point tensor of shape [hidden] = [{x.shape[-1]}] (x's last dim)"
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be {wanted}, got {describe(weight)}")
    raise ValueError(f"{op}: weight must be {wanted}, got {describe(weight)}")


def reject_epsilon(op: str, epsilon: object) -> None:
    """Raise for a bad ``epsilon``; a symbolic float (traced by Dynamo) passes."""
    if isinstance(epsilon, torch.SymFloat):
        return
    wanted = "a finite Python float >= 0"
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
        raise TypeError(f"{op}: epsilon must be {wanted}, got {describe(epsilon)}")
    raise ValueError(f"{op}: epsilon must be {wanted}, got {epsilon!r}")


def check_epsilon(op: str, epsilon: object) -> None:
    """``epsilon`` a finite number >= 0 (an int is taken, as torch's ``float`` schema does)."""
    kind = type(epsilon)
    if not ((kind is float or kind is int) and 0 <= epsilon < INF):  # type: ignore[operator]
        reject_epsilon(op, epsilon)


def reject_variance_size(op: str, variance_size: object, x: Tensor) -> None:
    """Raise for a bad ``variance_size``; a symbolic int in range (traced) passes."""
    wanted = f"None or an int in [1, {x.shape[-1]}] (x's last dimension)"
    if isinstance(variance_size, torch.SymInt) and 0 < variance_size <= x.shape[-1]:
        return
    if type(variance_size) is not int:
        raise TypeError(f"{op}: variance_size must be {wanted}, got {describe(variance_size)}")
    raise ValueError(f"{op}: variance_size must be {wanted}, got {variance_size}")


def check_norm_args(
    op: str, x: object, weight: object, epsilon: object, variance_size: object
) -> None:
    """The arguments every RMS norm takes: ``x``, ``weight``, ``epsilon``, ``variance_size``.

    The complete check, which the validators call only when their fast path (written out in
    each, since a function call costs as much as a check) did not accept the arguments.
    """
    if not (isinstance(x, Tensor) and x.is_floating_point() and x.dim()):
        reject_float_tensor(op, "x", x)
    if weight is not None and not (
        isinstance(weight, Tensor)
        and weight.dim() == 1
        and weight.is_floating_point()
        and weight.shape[0] == x.shape[-1]
    ):
        reject_weight(op, weight, x)
    kind = type(epsilon)
    if not ((kind is float or kind is int) and 0 <= epsilon < INF):  # type: ignore[operator]
        reject_epsilon(op, epsilon)
    if variance_size is not None and not (
        type(variance_size) is int and 0 < variance_size <= x.shape[-1]
    ):
        reject_variance_size(op, variance_size, x)


def check_residual(op: str, x_residual: object, x: Tensor) -> None:
    """A residual: a floating-point tensor of ``x``'s shape (no broadcasting)."""
    if not (
        isinstance(x_residual, Tensor)
        and x_residual.is_floating_point()
        and x_residual.shape == x.shape
    ):
        wanted = f"a floating-point tensor of x's shape {list(x.shape)}"
        error = ValueError if isinstance(x_residual, Tensor) else TypeError
        raise error(f"{op}: x_residual must be {wanted}, got {describe(x_residual)}")


def check_gated_x(op: str, x: object) -> None:
    """A gated activation's input ``[..., 2 * d]``: floating point, at least 1-D, even width."""
    if not (isinstance(x, Tensor) and x.is_floating_point() and x.dim()):
        reject_float_tensor(op, "x", x)
    if x.shape[-1] % 2:
        raise ValueError(
            f"{op}: x must have an even last dimension [gate | up], got shape {list(x.shape)}"
        )


def check_choice(op: str, name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices or type(value) is not str:
        error = ValueError if isinstance(value, str) else TypeError
        raise error(f"{op}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_finite_number(op: str, name: str, value: object) -> None:
    kind = type(value)
    if not ((kind is float or kind is int) and math.isfinite(value)):  # type: ignore[arg-type]
        if isinstance(value, torch.SymFloat):
            return
        wanted = "a finite Python float"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{op}: {name} must be {wanted}, got {describe(value)}")
        raise ValueError(f"{op}: {name} must be {wanted}, got {value!r}")


def check_bool(op: str, name: str, value: object) -> None:
    if type(value) is not bool:
        raise TypeError(f"{op}: {name} must be True or False, got {describe(value)}")


def check_int(op: str, name: str, value: object, minimum: int) -> None:
    """An int >= ``minimum``; a symbolic int (traced) is held to the bound too."""
    if isinstance(value, torch.SymInt):
        if not value >= minimum:
            raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value}")
        return
    if type(value) is not int:
        raise TypeError(f"{op}: {name} must be an int >= {minimum}, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value}")


def compute_dtype(t: Tensor) -> torch.dtype:
    """The dtype natives compute in: the wider of float32 and ``t``'s dtype."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32
