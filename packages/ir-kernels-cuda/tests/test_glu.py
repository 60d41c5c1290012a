"""The cuda providers of silu_and_mul and gelu_and_mul beyond the conformance suite: which
arguments they take, and their values at infinities, which follow the formulas."""

from __future__ import annotations

import pytest
import torch

from ir_kernels_cuda._support import PROVIDER
from ir_op import ops
from ir_op.testing import assert_outputs_close
from ir_op.testing.references import REFERENCES, rounded_like

pytestmark = [
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]


def test_supports_args(device: str) -> None:
    silu, gelu = ops.silu_and_mul.impls[PROVIDER], ops.gelu_and_mul.impls[PROVIDER]
    x = torch.randn(4, 48, device=device).to(torch.bfloat16)
    assert silu.supports_args(x) and gelu.supports_args(x) and gelu.supports_args(x, "tanh")
    assert silu.supports_args(x.half()) and silu.supports_args(x.float())
    assert silu.supports_args(x.view(2, 2, 48)), "3-D"
    assert silu.supports_args(torch.randn(4, 64, device=device)[:, 8:56]), "padded rows"
    assert not silu.supports_args(x[:, :47]) and not gelu.supports_args(x[:, :47]), "odd width"
    assert not gelu.supports_args(x, "fast"), "unknown approximation"
    assert not silu.supports_args(x.double()) and not gelu.supports_args(x.double()), "fp64"
    assert not silu.supports_args(x.t().contiguous().t()), "transposed"
    assert not silu.supports_args(x.to("meta")), "meta"


@pytest.mark.parametrize(
    ("name", "options"),
    [("silu_and_mul", ()), ("gelu_and_mul", ("none",)), ("gelu_and_mul", ("tanh",))],
)
def test_infinities_follow_the_formulas(device: str, name: str, options: tuple[str]) -> None:
    """±inf and NaN gates against the float64 reference: +inf gives +inf (torch's vectorized CPU
    GELU says NaN there), -inf gives NaN (-inf * 0), NaN stays NaN."""
    op = ops.silu_and_mul if name == "silu_and_mul" else ops.gelu_and_mul
    gate = torch.tensor([float("inf"), -float("inf"), float("nan"), 1e30, -1e30, -3.0, 2.0])
    x = torch.cat((gate, torch.full_like(gate, 1.5))).view(1, -1).to(device)
    with op.set_priority([PROVIDER]):
        actual = op(x, *options)
    expected = rounded_like(REFERENCES[name](x, *options), actual)
    assert_outputs_close(op, actual, expected)
