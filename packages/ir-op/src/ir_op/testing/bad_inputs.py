"""Bad arguments for every op, and the checks that each is refused cleanly on every provider.

:data:`BAD_ARGUMENTS` maps a parameter name to ways of spoiling it, each a function of the
op's valid arguments (as a dict, from its input generator) returning the bad value. Every op
that has the parameter gets every one of them, so a new op is covered by the names it shares
with others, and a new kind of bad value by one entry here.

:func:`check_rejects_bad_input` asserts what the issue asked of ops: ``op(...)`` with torch wrap
on and off (and ``maybe_inplace`` where the op has it) raises ``TypeError`` or ``ValueError``
naming the op and the argument, whichever provider the priority puts first; the provider's
``supports_args`` answers a bool instead of raising; and nothing global changes (priorities,
the torch wrap flag, the registry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ir_op.op import IrOp
from ir_op.testing import preserved_priorities
from ir_op.wrap import TORCH_WRAP, enable_torch_wrap

Args = dict[str, Any]
Spoil = Callable[[Args], object]


def _x_like(name: str) -> Callable[[Args], Tensor]:
    return lambda a: a[name]


def _as_int(name: str) -> Spoil:
    return lambda a: _x_like(name)(a).to(torch.int32)


def _as_bool(name: str) -> Spoil:
    return lambda a: _x_like(name)(a) > 0


def _zero_dim(name: str) -> Spoil:
    return lambda a: _x_like(name)(a).reshape(-1)[0].clone()


def _hidden(a: Args) -> int:
    x = a.get("x", a.get("query"))
    assert isinstance(x, Tensor)
    return int(x.shape[-1])


def _weight_of(a: Args, *shape: int) -> Tensor:
    x = a["x"]
    return torch.ones(shape, dtype=x.dtype, device=x.device)


def _float_tensor_cases(name: str) -> dict[str, Spoil]:
    return {
        "int32": _as_int(name),
        "bool": _as_bool(name),
        "none": lambda a: None,
        "0-dim": _zero_dim(name),
        "list": lambda a: a[name].tolist(),
    }


_SCALE_CASES: dict[str, Spoil] = {
    "python_float": lambda a: 1.0,
    "two_elements": lambda a: a["scale"].repeat(2),
    "float16": lambda a: a["scale"].half(),
    "none": lambda a: None,
}

BAD_ARGUMENTS: dict[str, dict[str, Spoil]] = {
    "x": _float_tensor_cases("x"),
    "query": {k: v for k, v in _float_tensor_cases("query").items() if k != "0-dim"},
    "weight": {
        "hidden-1": lambda a: _weight_of(a, _hidden(a) - 1),
        "one": lambda a: _weight_of(a, 1),
        "4xhidden": lambda a: _weight_of(a, 4, _hidden(a)),
        "2x4xhidden": lambda a: _weight_of(a, 2, 4, _hidden(a)),
        "int32": lambda a: _weight_of(a, _hidden(a)).to(torch.int32),
        "python_float": lambda a: 1.0,
    },
    "x_residual": {
        "broadcast": lambda a: a["x_residual"][:1],
        "3x1xhidden": lambda a: a["x_residual"].new_zeros(3, 1, _hidden(a)),
        "int32": _as_int("x_residual"),
        "none": lambda a: None,
    },
    "epsilon": {
        "tensor": lambda a: torch.tensor(1e-6),
        "str": lambda a: "1e-6",
        "negative": lambda a: -1e-6,
        "nan": lambda a: float("nan"),
        "inf": lambda a: float("inf"),
        "none": lambda a: None,
        "bool": lambda a: True,
    },
    "variance_size": {
        "zero": lambda a: 0,
        "too_wide": lambda a: _hidden(a) + 1,
        "float": lambda a: 4.0,
    },
    "scale": _SCALE_CASES,
    "scale_ub": {
        "python_float": lambda a: 1.0,
        "two_elements": lambda a: torch.ones(2, device=a["x"].device),
        "float16": lambda a: torch.ones(1, dtype=torch.float16, device=a["x"].device),
    },
    "fp8_dtype": {
        "float16": lambda a: torch.float16,
        "str": lambda a: "float8_e4m3fn",
    },
    "approximate": {"unknown": lambda a: "fast", "int": lambda a: 1},
    "std_multiplier": {
        "nan": lambda a: float("nan"),
        "tensor": lambda a: torch.tensor(1.0),
        "str": lambda a: "1.6",
    },
    "per_token": {"int": lambda a: 1, "str": lambda a: "yes"},
    "positions": {
        "float": lambda a: a["positions"].float(),
        "none": lambda a: None,
        "0-dim": _zero_dim("positions"),
    },
    "key": {"int32": _as_int("key"), "wrong_tokens": lambda a: a["key"][:1]},
    "head_size": {"zero": lambda a: 0, "float": lambda a: 64.0, "none": lambda a: None},
    "cos_sin_cache": {"1-d": lambda a: a["cos_sin_cache"][0], "none": lambda a: None},
    "is_neox_style": {"str": lambda a: "yes", "none": lambda a: None},
    "rotary_dim": {"odd": lambda a: 3, "float": lambda a: 2.0},
}
"""Per parameter name: ``{label: spoil(valid_args) -> bad value}``."""


@dataclass(frozen=True)
class BadInput:
    """One op called with one argument spoiled."""

    op_name: str
    argument: str
    label: str

    @property
    def id(self) -> str:
        return f"{self.op_name}-{self.argument}={self.label}"

    @property
    def op(self) -> IrOp:
        return IrOp.registry[self.op_name]


def bad_input_cases(ops: list[IrOp]) -> list[BadInput]:
    """Every op's parameters against :data:`BAD_ARGUMENTS`."""
    cases: list[BadInput] = []
    for op in ops:
        if not op.has_input_generator or op.validate is None:
            continue
        for argument in op.signature.parameter_names:
            for label in BAD_ARGUMENTS.get(argument, {}):
                cases.append(BadInput(op.name, argument, label))
    return cases


VALID_SPOILINGS = frozenset({("static_scaled_fp8_quant", "x", "0-dim")})
"""``(op, argument, label)`` of spoilings that are valid for that op (it quantizes a scalar)."""


def make_bad_args(case: BadInput, device: str) -> tuple[Any, ...] | None:
    """The op's valid small inputs with ``case.argument`` spoiled; ``None`` where the spoiled
    value is valid after all (``None`` for a parameter that defaults to it)."""
    op = case.op
    if (case.op_name, case.argument, case.label) in VALID_SPOILINGS:
        return None
    torch.manual_seed(0)
    valid = op.generate_inputs(num_tokens=3, hidden_size=64, dtype=torch.bfloat16, device=device)
    names = op.signature.parameter_names
    args = dict(zip(names, valid, strict=True))
    bad = BAD_ARGUMENTS[case.argument][case.label](args)
    if bad is None and op.signature.python.parameters[case.argument].default is None:
        return None
    args[case.argument] = bad
    return tuple(args.values())


def _state() -> tuple[Any, ...]:
    ops = tuple(sorted(IrOp.registry))
    priorities = tuple(tuple(op.get_priority()) for op in IrOp.registry.values())
    return ops, priorities, TORCH_WRAP.enabled


def check_rejects_bad_input(case: BadInput, provider: str, device: str) -> None:
    """``op(bad...)`` raises a clear ``TypeError``/``ValueError`` with ``provider`` first in the
    priority, wrap on and off; ``supports_args`` returns a bool; global state is unchanged."""
    import pytest

    op = case.op
    args = make_bad_args(case, device)
    if args is None:
        pytest.skip(f"{case.id}: not a bad value for this op")
    impl = op.impls[provider]
    answer = impl.supports_args(*args)  # must not raise
    assert isinstance(answer, bool), f"supports_args of {impl!r} returned {answer!r}"
    with preserved_priorities():
        if provider != "native":
            op.set_default([provider, "native"])
        before = _state()
        calls: list[tuple[str, Callable[..., Any]]] = [("op", op)]
        if op.allow_inplace:
            calls.append(("maybe_inplace", op.maybe_inplace))  # type: ignore[attr-defined]
        for wrap in (True, False):
            for what, call in calls:
                with enable_torch_wrap(wrap):
                    try:
                        call(*args)
                    except (TypeError, ValueError) as e:
                        message = str(e)
                    else:
                        raise AssertionError(
                            f"{what}(...) with {case.id} (wrap={wrap}, {provider!r} first) "
                            "raised nothing"
                        )
                where = f"{what}(...) with {case.id} (wrap={wrap})"
                assert op.name in message, f"{where}: the error does not name the op: {message}"
                assert case.argument in message, (
                    f"{where}: the error does not name the argument: {message}"
                )
        assert _state() == before, f"{case.id}: global state changed"
