"""Comparing a provider's outputs with the op's native outputs, at the op's tolerances."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from ir_op.op import IrOp


def _is_fp8(dtype: torch.dtype) -> bool:
    return dtype.is_floating_point and dtype.itemsize == 1


def _flatten(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def assert_outputs_close(op: IrOp, actual: Any, expected: Any) -> None:
    """Assert that ``actual`` (one output or a tuple of them) matches ``expected`` closely.

    Outputs pair up in order and must agree in kind (tensor or ``None``), shape and dtype; each
    tensor pair is compared with ``op.get_tolerance(dtype)``, NaNs equal. Integer tensors use
    their tolerance as well. fp8 tensors are compared as float32, since torch compares fp8 only
    bit for bit.
    """
    got, want = _flatten(actual), _flatten(expected)
    if len(got) != len(want):
        raise AssertionError(f"op {op.name!r}: {len(got)} outputs, expected {len(want)}")
    for index, (a, e) in enumerate(zip(got, want, strict=True)):
        where = f"op {op.name!r}, output {index}"
        if e is None or a is None:
            if a is not e:
                raise AssertionError(f"{where}: got {type(a).__name__}, expected {e!r}")
            continue
        if not isinstance(a, Tensor) or not isinstance(e, Tensor):
            raise AssertionError(f"{where}: expected tensors, got {type(a).__name__}")
        if a.dtype != e.dtype or a.shape != e.shape:
            raise AssertionError(
                f"{where}: got {a.dtype} {list(a.shape)}, expected {e.dtype} {list(e.shape)}"
            )
        tolerance = op.get_tolerance(e.dtype)
        fp8 = _is_fp8(e.dtype)  # torch compares fp8 only bit for bit: compare as float32
        torch.testing.assert_close(
            a.float() if fp8 else a,
            e.float() if fp8 else e,
            **tolerance,
            equal_nan=True,
            msg=functools.partial(_located, where),
        )


def _located(where: str, message: str) -> str:
    return f"{where}: {message}"
