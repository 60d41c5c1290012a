"""What every op of ir_op.ops must offer: generators, tolerances, opcheck, wrap, maybe_inplace.

Semantics against float64 references live in the per-family modules (test_ops*.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

from ir_op import IrOp, IrOpInplace, enable_torch_wrap, ops
from ir_op.testing import assert_outputs_close
from ir_op.testing.references import REFERENCES, rounded_like

pytestmark = pytest.mark.usefixtures("native_priorities")

ALL_OPS: list[IrOp] = [getattr(ops, name) for name in ops.__all__]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]

# Generator keywords that reach each op's other code paths (the first entry: the defaults).
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "rms_norm": [{}, {"with_weight": False, "variance_size": 16}],
    "fused_add_rms_norm": [{}, {"with_weight": False}],
    "gelu_and_mul": [{}, {"approximate": "tanh"}],
    "rotary_embedding": [
        {},
        {"with_key": False},
        {"per_head_layout": True, "is_neox_style": False, "rotary_dim": 8},
    ],
    "dynamic_scaled_fp8_quant": [{}, {"per_token": True, "scale_ub": 2.0}],
    "static_scaled_fp8_quant": [{}, {"calibration": 0.5}],
}
CASES = [
    pytest.param(op, kwargs, id=f"{op.name}-{i}")
    for op in ALL_OPS
    for i, kwargs in enumerate(VARIANTS.get(op.name, [{}]))
]


def _outputs(value: object) -> list[Tensor | None]:
    return list(value) if isinstance(value, tuple) else [value]  # type: ignore[list-item]


def test_every_op_is_registered_and_covered() -> None:
    assert {op.name for op in ALL_OPS} <= set(IrOp.registry)
    assert set(VARIANTS) <= {op.name for op in ALL_OPS}
    assert set(REFERENCES) == {op.name for op in ALL_OPS}
    for op in ALL_OPS:
        assert op.has_input_generator, op.name
        assert str(op) != repr(op), f"{op.name} has no docstring"


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", DTYPES)
def test_input_generator(op: IrOp, dtype: torch.dtype) -> None:
    args = op.generate_inputs(num_tokens=7, hidden_size=96, dtype=dtype)
    op.signature.python.bind(*args)  # a valid call
    tensors = [a for a in args if isinstance(a, Tensor)]
    first = tensors[0] if op.name != "rotary_embedding" else args[1]
    assert first.shape[0] == 7 and first.dtype == dtype
    assert all(t.numel() and t.abs().sum() > 0 for t in tensors)  # random, never zeros
    outputs = _outputs(op(*args))
    assert len(outputs) == len(op.signature.return_entries)
    assert outputs[0] is not None and outputs[0].shape[0] == 7
    for out in outputs:
        assert out is not None and torch.isfinite(out.float()).all()


@pytest.mark.parametrize(("op", "kwargs"), CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_generated_inputs_match_reference(
    op: IrOp, kwargs: dict[str, Any], dtype: torch.dtype
) -> None:
    args = op.generate_inputs(num_tokens=7, hidden_size=96, dtype=dtype, **kwargs)
    actual = op(*args)
    assert_outputs_close(op, actual, rounded_like(REFERENCES[op.name](*args), actual))


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
def test_generator_places_tensors_on_the_device(op: IrOp) -> None:
    args = op.generate_inputs(num_tokens=2, hidden_size=32, dtype=torch.float32, device="meta")
    assert all(a.device.type == "meta" for a in args if isinstance(a, Tensor))


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", DTYPES)
def test_tolerances_cover_every_output_dtype(op: IrOp, dtype: torch.dtype) -> None:
    args = op.generate_inputs(num_tokens=3, hidden_size=32, dtype=dtype)
    for out in _outputs(op(*args)):
        assert out is not None
        tol = op.get_tolerance(out.dtype)
        assert tol["atol"] >= 0 and tol["rtol"] >= 0 and tol["atol"] + tol["rtol"] > 0


@pytest.mark.parametrize(("op", "kwargs"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_opcheck(op: IrOp, kwargs: dict[str, Any], dtype: torch.dtype) -> None:
    def inputs() -> tuple[Any, ...]:
        return op.generate_inputs(num_tokens=5, hidden_size=48, dtype=dtype, **kwargs)

    torch.library.opcheck(op.torch_op, inputs())
    if isinstance(op, IrOpInplace):
        torch.library.opcheck(op.maybe_inplace.torch_op, inputs())


@pytest.mark.parametrize(("op", "kwargs"), CASES)
def test_wrap_on_and_off_agree(op: IrOp, kwargs: dict[str, Any]) -> None:
    args = op.generate_inputs(num_tokens=3, hidden_size=32, dtype=torch.bfloat16, **kwargs)
    on = op(*args)
    with enable_torch_wrap(False):
        off = op(*args)
    assert len(_outputs(on)) == len(_outputs(off))
    for a, b in zip(_outputs(on), _outputs(off), strict=True):
        if a is None or b is None:
            assert a is b
        else:
            assert torch.equal(a.float(), b.float()) and a.dtype == b.dtype


@pytest.mark.parametrize(("op", "kwargs"), CASES)
def test_make_fx_sees_one_node_with_wrap_on_and_none_off(op: IrOp, kwargs: dict[str, Any]) -> None:
    args = op.generate_inputs(num_tokens=3, hidden_size=32, dtype=torch.float32, **kwargs)
    tensors = [i for i, a in enumerate(args) if isinstance(a, Tensor)]

    def call(*tensor_args: Tensor) -> Any:
        full = list(args)
        for i, t in zip(tensors, tensor_args, strict=True):
            full[i] = t
        return op(*full)

    def ir_nodes(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
        return [n for n in gm.graph.nodes if n.target is op.torch_op]

    tensor_args = [args[i] for i in tensors]
    on = make_fx(call)(*tensor_args)
    assert len(ir_nodes(on)) == 1
    with enable_torch_wrap(False):
        off = make_fx(call)(*tensor_args)
    assert ir_nodes(off) == []
    assert_outputs_close(op, off(*tensor_args), on(*tensor_args))


INPLACE_OPS = [op for op in ALL_OPS if isinstance(op, IrOpInplace)]
INPLACE_CASES = [c for c in CASES if isinstance(c.values[0], IrOpInplace)]


def test_inplace_ops() -> None:
    assert {op.name for op in INPLACE_OPS} == {"fused_add_rms_norm", "rotary_embedding"}


@pytest.mark.parametrize(("op", "kwargs"), INPLACE_CASES)
@pytest.mark.parametrize("wrap", [True, False])
def test_maybe_inplace_with_native_equals_default(
    op: IrOpInplace, kwargs: dict[str, Any], wrap: bool
) -> None:
    args = op.generate_inputs(num_tokens=4, hidden_size=64, dtype=torch.bfloat16, **kwargs)
    saved = [a.clone() if isinstance(a, Tensor) else a for a in args]
    expected = op(*args)
    with enable_torch_wrap(wrap):
        actual = op.maybe_inplace(*args)
    for a, e in zip(_outputs(actual), _outputs(expected), strict=True):
        assert (a is None and e is None) or torch.equal(a, e)  # type: ignore[arg-type]
    for a, s in zip(args, saved, strict=True):  # native is functional: inputs untouched
        assert not isinstance(a, Tensor) or torch.equal(a, s)
