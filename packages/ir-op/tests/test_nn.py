"""ir_op.nn: torch.nn layers over the ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ir_op import nn as ir_nn
from ir_op import ops
from ir_op.testing.pytest_plugin import device_under_test

DEVICE = device_under_test().tensor_device


def _rms(x: torch.Tensor, eps: float) -> torch.Tensor:
    x32 = x.float()
    return x32 * torch.rsqrt(x32.square().mean(-1, keepdim=True) + eps)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_matches_the_op(dtype: torch.dtype) -> None:
    norm = ir_nn.RMSNorm(64, eps=1e-5, dtype=dtype, device=DEVICE)
    with torch.no_grad():
        norm.weight.normal_()  # type: ignore[union-attr]
    x = torch.randn(5, 64, dtype=dtype, device=DEVICE)
    with torch.inference_mode():
        out = norm(x)
        expected = ops.rms_norm.native_fn(x, norm.weight, 1e-5)
    torch.testing.assert_close(out, expected, **ops.rms_norm.get_tolerance(dtype))
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_with_offset_is_gemmas_norm(dtype: torch.dtype) -> None:
    norm = ir_nn.RMSNorm(64, eps=1e-6, weight_offset=1.0, dtype=dtype, device=DEVICE)
    assert torch.count_nonzero(norm.weight) == 0  # Gemma checkpoints store w, computed as 1 + w
    with torch.no_grad():
        norm.weight.normal_()  # type: ignore[union-attr]
    x = torch.randn(5, 64, dtype=dtype, device=DEVICE)
    with torch.no_grad():
        out = norm(x)
    expected = (_rms(x, 1e-6) * (1.0 + norm.weight.float())).type_as(x)  # type: ignore[union-attr]
    # bfloat16: exact under the float32-weight rule (normalized row times the float32 weight,
    # rounded once); one extra rounding of the normalized row before that stays within this.
    torch.testing.assert_close(out, expected, **ops.rms_norm.get_tolerance(dtype))


def test_rms_norm_without_weight() -> None:
    norm = ir_nn.RMSNorm(16, elementwise_affine=False)
    assert norm.weight is None
    assert list(norm.state_dict()) == []
    x = torch.randn(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(norm(x), _rms(x, 1e-6))


def test_rms_norm_state_dict_is_hugging_faces() -> None:
    norm = ir_nn.RMSNorm(16)
    assert {k: tuple(v.shape) for k, v in norm.state_dict().items()} == {"weight": (16,)}
    assert "eps=1e-06" in repr(norm)


def test_rms_norm_gradients_are_the_native_functions() -> None:
    norm = ir_nn.RMSNorm(16, weight_offset=1.0)
    with torch.no_grad():
        norm.weight.normal_()  # type: ignore[union-attr]
    x = torch.randn(4, 16, requires_grad=True)
    norm(x).square().sum().backward()
    assert norm.weight.grad is not None and x.grad is not None  # type: ignore[union-attr]
    x2 = x.detach().clone().requires_grad_()
    w2 = norm.weight.detach().clone().requires_grad_()  # type: ignore[union-attr]
    (_rms(x2, 1e-6) * (1.0 + w2)).square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(norm.weight.grad, w2.grad)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"hidden_size": 0}, ValueError, "hidden_size must be an int > 0, got 0"),
        ({"hidden_size": 8, "eps": -1.0}, ValueError, "eps must be a number >= 0"),
        ({"hidden_size": 8, "weight_offset": "1"}, TypeError, "weight_offset must be a number"),
        (
            {"hidden_size": 8, "weight_offset": 1.0, "elementwise_affine": False},
            ValueError,
            "weight_offset needs a weight",
        ),
    ],
)
def test_rms_norm_rejects_bad_arguments(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ir_nn.RMSNorm(**kwargs)  # type: ignore[arg-type]


def test_silu_and_mul() -> None:
    x = torch.randn(3, 2 * 24, device=DEVICE)
    with torch.no_grad():
        out = ir_nn.SiluAndMul()(x)
    torch.testing.assert_close(out, F.silu(x[:, :24]) * x[:, 24:])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_and_mul(approximate: str) -> None:
    x = torch.randn(3, 2 * 24, device=DEVICE)
    layer = ir_nn.GeluAndMul(approximate)
    with torch.no_grad():
        out = layer(x)
    torch.testing.assert_close(out, F.gelu(x[:, :24], approximate=approximate) * x[:, 24:])
    assert repr(approximate) in repr(layer)


def test_gelu_and_mul_rejects_unknown_mode() -> None:
    with pytest.raises(
        ValueError, match=r"approximate='erf' is not a GELU mode; valid: none, tanh"
    ):
        ir_nn.GeluAndMul("erf")


def test_gated_activations_are_differentiable() -> None:
    x = torch.randn(3, 16, requires_grad=True)
    ir_nn.SiluAndMul()(x).sum().backward()
    x2 = x.detach().clone().requires_grad_()
    (F.silu(x2[:, :8]) * x2[:, 8:]).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
