"""Checks of what every provider must do alike beyond plain numerics: gradients, mixed dtypes.

- :func:`check_gradients`: in grad mode, with inputs that require grad, ``op(...)`` (torch
  wrap on and off, the provider first in the priority) gives the native function's gradients
  exactly (it runs native), and an op declared ``differentiable=False`` raises ``ValueError``;
- :func:`check_weight_dtypes`: a norm weight of another floating dtype than ``x`` (vLLM IR's
  rule: the normalized row cast to the weight's dtype, multiplied there, cast to ``x.dtype``)
  and float64 inputs (computed in float64) match the native function, whichever provider runs.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import pytest
import torch
from torch import Tensor

from ir_op.op import IrOp
from ir_op.testing import preserved_priorities
from ir_op.wrap import enable_torch_wrap

WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _small_args(op: IrOp, dtype: torch.dtype, device: str) -> list[Any]:
    torch.manual_seed(0)
    return list(op.generate_inputs(num_tokens=5, hidden_size=64, dtype=dtype, device=device))


def _float_tensor_positions(op: IrOp, args: list[Any]) -> list[int]:
    return [
        i
        for i, _ in op._tensor_positions
        if i < len(args) and isinstance(args[i], Tensor) and args[i].is_floating_point()
    ]


def _outputs(result: Any) -> list[Tensor]:
    items = result if isinstance(result, tuple) else (result,)
    return [t for t in items if isinstance(t, Tensor) and t.is_floating_point()]


def _grads(op: IrOp, call: Any, args: list[Any], positions: list[int]) -> list[Tensor | None]:
    leaves = list(args)
    for i in positions:
        leaves[i] = args[i].detach().clone().requires_grad_(True)
    outputs = _outputs(call(*leaves))
    torch.manual_seed(1)
    loss = sum((o.float() * torch.randn_like(o, dtype=torch.float32)).sum() for o in outputs)
    assert isinstance(loss, Tensor)
    assert loss.requires_grad, f"op {op.name!r}: its outputs do not require grad"
    loss.backward()  # type: ignore[no-untyped-call]
    return [leaves[i].grad for i in positions]


def check_gradients(op: IrOp, provider: str, device: str) -> None:
    """Gradients through ``op(...)`` with ``provider`` first equal native's, or a clear refusal."""
    args = _small_args(op, torch.float32, device)
    positions = _float_tensor_positions(op, args)
    if not positions:
        pytest.skip(f"op {op.name!r} has no floating-point tensor argument")
    with preserved_priorities():
        if provider != "native":
            op.set_default([provider, "native"])
        for wrap in (True, False):
            with enable_torch_wrap(wrap), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if not op.differentiable:
                    leaves = list(args)
                    leaves[positions[0]] = args[positions[0]].clone().requires_grad_(True)
                    with pytest.raises(ValueError, match="is not differentiable"):
                        op(*leaves)
                    with torch.no_grad():
                        op(*leaves)  # fine without grad mode
                    continue
                got = _grads(op, op, args, positions)
            want = _grads(op, op.native_fn, args, positions)
            for i, g, w in zip(positions, got, want, strict=True):
                name = op.signature.parameter_names[i]
                assert g is not None, f"op {op.name!r} (wrap={wrap}): {name}.grad is None"
                assert w is not None
                torch.testing.assert_close(g, w, atol=0, rtol=0, msg=_prefixed(f"{name}.grad"))


def _prefixed(label: str) -> Any:
    return lambda message: f"{label}: {message}"


def weight_dtype_pairs() -> list[tuple[torch.dtype, torch.dtype]]:
    """``(x dtype, weight dtype)`` pairs of different dtypes, and float64 with itself."""
    pairs = [(a, b) for a, b in itertools.product(WEIGHT_DTYPES, WEIGHT_DTYPES) if a != b]
    return [*pairs, (torch.float64, torch.float64)]


def check_weight_dtypes(
    op: IrOp, provider: str, device: str, x_dtype: torch.dtype, weight_dtype: torch.dtype
) -> None:
    """``op(...)`` with ``provider`` first and a weight of ``weight_dtype`` matches native."""
    args = _small_args(op, x_dtype, device)
    names = op.signature.parameter_names
    if "weight" not in names:
        pytest.skip(f"op {op.name!r} has no weight")
    index = names.index("weight")
    args[index] = (1.0 + 0.5 * torch.randn(args[0].shape[-1], device=device)).to(weight_dtype)
    expected = op.native_fn(*args)
    with preserved_priorities(), torch.no_grad():
        if provider != "native":
            op.set_default([provider, "native"])
        for wrap in (True, False):
            with enable_torch_wrap(wrap):
                actual = op(*args)
            for got, want in zip(_flatten(actual), _flatten(expected), strict=True):
                assert got.dtype == want.dtype
                tolerance = op.get_tolerance(want.dtype)
                if want.element_size() > 1:
                    # The row is rounded to the weight's dtype on the way: a provider summing
                    # in another order may land one step of that dtype away.
                    coarser = op.get_tolerance(weight_dtype)
                    tolerance = {
                        "atol": max(tolerance["atol"], coarser["atol"]),
                        "rtol": max(tolerance["rtol"], coarser["rtol"]),
                    }
                compare_got = got.float() if got.element_size() == 1 else got
                compare_want = want.float() if want.element_size() == 1 else want
                torch.testing.assert_close(compare_got, compare_want, **tolerance)


def _flatten(result: Any) -> list[Tensor]:
    items = result if isinstance(result, tuple) else (result,)
    return [t for t in items if isinstance(t, Tensor)]


def native_weight_reference(
    x: Tensor, weight: Tensor, epsilon: float, residual: Tensor | None = None
) -> Tensor:
    """vLLM IR 0.33's RMS norm written out, for tests of the natives."""
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    xc = x.to(compute) if residual is None else x.to(compute) + residual.to(compute)
    normalized = xc * torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + epsilon)
    return (normalized.to(weight.dtype) * weight).to(x.dtype)
