"""ir_triton.supports (the shared supports_args of row-wise Triton kernels) and
ir_triton.fp8 (where fp8 kernels store, compiled or interpreted)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

pytest.importorskip("triton")

from ir_op.testing import forced_platform
from ir_triton import fp8 as fp8_store
from ir_triton import supports


def t(*shape: int, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    return torch.randn(*shape).to(dtype)


def _norm_cases() -> list[tuple[str, tuple[Any, ...], bool]]:
    x, w = t(4, 64), t(64)
    return [
        ("bf16", (x, w, 1e-6), True),
        ("no weight", (x, None, 1e-6), True),
        ("fp16", (t(4, 64, dtype=torch.float16), t(64, dtype=torch.float16), 1e-6), True),
        ("fp32", (t(4, 64, dtype=torch.float32), t(64, dtype=torch.float32), 1e-6), True),
        ("fp64", (t(4, 64, dtype=torch.float64), t(64, dtype=torch.float64), 1e-6), False),
        ("int", (torch.ones(4, 64, dtype=torch.int32), None, 1e-6), False),
        ("fp32 weight", (x, t(64, dtype=torch.float32), 1e-6), True),  # vLLM's rule
        ("fp16 weight", (x, t(64, dtype=torch.float16), 1e-6), True),
        ("fp64 weight", (x, t(64, dtype=torch.float64), 1e-6), False),
        ("0-dim x", (t(1).reshape(()), None, 1e-6), False),
        ("None x", (None, None, 1e-6), False),
        ("weight size", (x, t(63), 1e-6), False),
        ("weight strided", (x, t(128)[::2], 1e-6), False),
        ("weight 2-D", (x, t(1, 64), 1e-6), False),
        ("padded rows", (t(4, 80)[:, :64], w, 1e-6), True),
        ("3-D", (t(2, 3, 64), w, 1e-6), True),
        ("1-D", (t(64), w, 1e-6), True),
        ("transposed", (t(64, 4).t(), t(4), 1e-6), False),
        ("variance_size", (x, w, 1e-6, 16), True),
        ("variance_size = hidden", (x, w, 1e-6, 64), True),
        ("variance_size 0", (x, w, 1e-6, 0), False),
        ("variance_size too big", (x, w, 1e-6, 65), False),
        ("meta tensors", (x.to("meta"), w.to("meta"), 1e-6), False),
    ]


@pytest.fixture(autouse=True)
def _cpu_platform() -> Any:
    with forced_platform("cpu"):  # row kernels' device: the CPU
        yield


def test_rms_norm_supports_args() -> None:
    for name, args, expected in _norm_cases():
        assert supports.rms_norm_supports_args(*args) is expected, name


def test_fused_add_rms_norm_supports_args() -> None:
    for name, (x, w, *rest), expected in _norm_cases():
        residual = torch.empty_like(x) if isinstance(x, torch.Tensor) else None
        assert supports.fused_add_rms_norm_supports_args(x, residual, w, *rest) is expected, name
    x, w = t(4, 64), t(64)
    check = supports.fused_add_rms_norm_supports_args
    assert check(x, t(80, 64)[:4], w, 1e-6), "residual rows of another buffer"
    assert not check(x, x.float(), w, 1e-6), "residual dtype"
    assert not check(x, x[:3], w, 1e-6), "residual shape"
    assert not check(x, x.t().contiguous().t(), w, 1e-6), "residual layout"
    assert not check(t(64).expand(4, 64), x, w, 1e-6), "overlapping rows"


@pytest.mark.parametrize(
    "check",
    [
        supports.silu_and_mul_supports_args,
        supports.gelu_and_mul_supports_args,
        lambda x, *a: supports.gelu_and_mul_sparse_supports_args(x, 1.6, *a),
    ],
    ids=["silu_and_mul", "gelu_and_mul", "gelu_and_mul_sparse"],
)
def test_gated_activation_supports_args(check: Any) -> None:
    assert check(t(4, 64))
    assert check(t(4, 80)[:, :64]), "padded rows"
    assert check(t(2, 3, 64)), "3-D"
    assert not check(t(4, 63)), "odd width"
    assert not check(t(4, 64, dtype=torch.float64)), "fp64"
    assert not check(t(64, 4).t()), "transposed"


def test_gelu_approximations() -> None:
    x = t(4, 64)
    assert supports.gelu_and_mul_supports_args(x, "tanh")
    assert supports.gelu_and_mul_supports_args(x, "none")
    assert not supports.gelu_and_mul_supports_args(x, "fast")
    assert supports.gelu_and_mul_sparse_supports_args(x, 1.6, "tanh")
    assert not supports.gelu_and_mul_sparse_supports_args(x, 1.6, "fast")


def test_static_fp8_quant_supports_args_asks_the_kernel_set_for_formats() -> None:
    asked: list[torch.Tensor] = []

    def formats(x: torch.Tensor) -> frozenset[torch.dtype]:
        asked.append(x)
        return frozenset({torch.float8_e4m3fn})

    check = supports.static_fp8_quant_supports_args(formats)
    x, scale = t(4, 64), torch.tensor([0.5])
    assert check(x, scale, torch.float8_e4m3fn) is True
    assert asked == [x]
    assert check(x, scale) is True, "the op's default format"
    assert check(x, scale, torch.float8_e4m3fnuz) is False, "a format the kernels do not write"
    assert check(x, scale, torch.float16) is False
    assert check(t(4, 80)[:, :64], scale, torch.float8_e4m3fn) is True, "padded rows"
    assert check(x, scale.double(), torch.float8_e4m3fn) is False, "scale dtype"
    assert check(x, torch.ones(2), torch.float8_e4m3fn) is False, "scale size"
    assert check(x.double(), scale, torch.float8_e4m3fn) is False, "fp64"
    assert check(x.t(), scale, torch.float8_e4m3fn) is False, "transposed"
    assert check(torch.tensor(1.0), scale, torch.float8_e4m3fn) is False, "0-D"


def test_predicates_answer_a_bool_on_fake_and_symbolic_tensors() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    for mode in (FakeTensorMode(), FakeTensorMode(shape_env=ShapeEnv())):
        x, w = mode.from_tensor(t(4, 64)), mode.from_tensor(t(64))
        scale = mode.from_tensor(torch.tensor([0.5]))
        assert supports.rms_norm_supports_args(x, w, 1e-6) is True
        assert supports.fused_add_rms_norm_supports_args(x, x, w, 1e-6, 16) is True
        assert supports.silu_and_mul_supports_args(x) is True
        check = supports.static_fp8_quant_supports_args(lambda x: {torch.float8_e4m3fn})
        assert check(x, scale, torch.float8_e4m3fn) is True


def test_fp8_store_target_is_the_output_when_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp8_store, "interpreting", lambda: False)
    out = torch.empty(3, 5, dtype=torch.float8_e4m3fn)
    target = fp8_store.fp8_store_target(out)
    assert target is out
    fp8_store.fp8_store_finish(out, target)  # nothing to do


@pytest.mark.parametrize("fp8_dtype", [torch.float8_e4m3fn, torch.float8_e4m3fnuz])
def test_fp8_store_target_rounds_like_torch_when_interpreting(
    monkeypatch: pytest.MonkeyPatch, fp8_dtype: torch.dtype
) -> None:
    """Interpreted, kernels store float32 and torch rounds: to nearest even, NaN kept, and the
    values that Triton's interpreter gets wrong (ties, mantissa carries) right."""
    monkeypatch.setattr(fp8_store, "interpreting", lambda: True)
    out = torch.empty(2, 4, dtype=fp8_dtype)
    target = fp8_store.fp8_store_target(out)
    assert target.dtype == torch.float32 and target.shape == out.shape
    assert target.stride() == out.stride()
    values = torch.tensor(
        [[1.0625, 1.1875, 1.96875, float("nan")], [-0.0, 240.0, -3.0e-3, 17.0]]
    )  # ties to even (1.0625 -> 1.0, 1.1875 -> 1.25), a carry into the exponent (1.96875 -> 2)
    target.copy_(values)
    fp8_store.fp8_store_finish(out, target)
    expected = values.to(fp8_dtype)
    assert torch.equal(out.view(torch.uint8), expected.view(torch.uint8))
    assert out[0, :3].tolist() == [1.0, 1.25, 2.0]


def _e4m3fn_only(x: torch.Tensor) -> frozenset[torch.dtype]:
    return frozenset({torch.float8_e4m3fn})


def test_dynamic_fp8_quant_supports_args() -> None:
    check = supports.dynamic_fp8_quant_supports_args(_e4m3fn_only)
    x, ub = t(4, 64), torch.tensor([2.0])
    assert check(x) is True, "the op's defaults"
    assert check(x, True, ub, torch.float8_e4m3fn) is True
    assert check(t(4, 80)[:, :64], False, None, torch.float8_e4m3fn) is True, "padded rows"
    assert check(t(64), True) is True, "1-D: one row"
    assert check(x, True, None, torch.float8_e4m3fnuz) is False, "a format the kernels lack"
    assert check(x, True, ub.double()) is False, "scale_ub dtype"
    assert check(x, True, torch.ones(2)) is False, "scale_ub size"
    assert check(x, 1) is False, "per_token must be a bool"  # type: ignore[arg-type]
    assert check(x.t()) is False, "transposed"
    assert check(x.double()) is False, "fp64"
    assert check(torch.tensor(1.0)) is False, "0-D"


def test_fused_norm_quant_supports_args() -> None:
    norm = supports.rms_norm_static_fp8_quant_supports_args(_e4m3fn_only)
    residual = supports.fused_add_rms_norm_static_fp8_quant_supports_args(_e4m3fn_only)
    x, w, scale = t(4, 64), t(64), torch.tensor([0.5])
    assert norm(x, w, 1e-6, scale) is True
    assert norm(x, None, 1e-6, scale, torch.float8_e4m3fn) is True
    assert norm(x, w, 1e-6, scale, torch.float8_e4m3fnuz) is False
    assert norm(x, t(64, dtype=torch.float32), 1e-6, scale) is False, "weight dtype"
    assert norm(x, w, 1e-6, torch.ones(2)) is False, "scale size"
    assert norm(x.t(), t(4), 1e-6, scale) is False, "transposed"
    assert residual(x, t(4, 64), w, 1e-6, scale) is True
    assert residual(x, x, w, 1e-6, scale) is True, "outputs are new: inputs may be one buffer"
    assert residual(x, t(4, 80)[:, :64], w, 1e-6, scale) is True, "padded residual"
    assert residual(x, t(4, 64, dtype=torch.float16), w, 1e-6, scale) is False, "residual dtype"
    assert residual(x, t(4, 32), w, 1e-6, scale) is False, "residual shape"
    assert residual(x, t(64, 4).t(), w, 1e-6, scale) is False, "residual transposed"
    assert residual(x, t(4, 64), w, 1e-6, scale, torch.float8_e4m3fnuz) is False


def test_silu_and_mul_quant_supports_args() -> None:
    check = supports.silu_and_mul_static_fp8_quant_supports_args(_e4m3fn_only)
    scale = torch.tensor([0.5])
    assert check(t(4, 64), scale) is True
    assert check(t(4, 80)[:, :64], scale, torch.float8_e4m3fn) is True
    assert check(t(4, 63), scale) is False, "odd width"
    assert check(t(4, 64), scale, torch.float8_e4m3fnuz) is False
    assert check(t(4, 64), scale.double()) is False
    assert check(t(64, 4).t(), scale) is False
