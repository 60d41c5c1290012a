"""The cuda providers that write fp8 (the quantization ops and the fused norm and activation
ones), beyond the conformance suite: which arguments they take, exact fp8 rounding, and the
dynamic scales' edge cases (NaN, infinities, empty inputs, one row)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ir_kernels_cuda._support import PROVIDER
from ir_op import IrOp, ops
from ir_op.testing import assert_outputs_close

FNUZ = getattr(torch, "float8_e4m3fnuz", None)
# Triton's interpreter computes NaN and inf in NumPy, which warns about them
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def _t(*shape: int, device: str, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    return torch.randn(*shape, device=device).to(dtype)


def _check(op: IrOp, cases: list[tuple[str, tuple[Any, ...], bool]]) -> None:
    impl = op.impls[PROVIDER]
    for name, args, expected in cases:
        assert impl.supports_args(*args) is expected, f"{op.name}: {name}"


# -- supports_args ------------------------------------------------------------------------------


def _scale_cases(device: str, make: Any) -> list[tuple[str, tuple[Any, ...], bool]]:
    """Cases about the scale and the fp8 format, for ``make(scale=..., fp8_dtype=...)``."""
    scale = torch.tensor([0.1], device=device)
    cases = [
        ("scale [1]", make(scale=scale), True),
        ("scale []", make(scale=scale.reshape(())), True),
        ("scale [1, 1]", make(scale=scale.reshape(1, 1)), True),
        ("fp16 scale", make(scale=scale.half()), False),
        ("two scales", make(scale=torch.ones(2, device=device)), False),
        ("meta scale", make(scale=scale.to("meta")), False),
        ("e5m2", make(fp8_dtype=torch.float8_e5m2), False),
    ]
    if FNUZ is not None:
        cases.append(("e4m3fnuz (AMD's)", make(fp8_dtype=FNUZ), False))
    return cases


def _row_cases(device: str, make: Any, width: int) -> list[tuple[str, tuple[Any, ...], bool]]:
    """Cases about the activation, for ``make(x=...)``."""
    return [
        ("bf16", make(x=_t(4, width, device=device)), True),
        ("fp16", make(x=_t(4, width, device=device, dtype=torch.float16)), True),
        ("fp32", make(x=_t(4, width, device=device, dtype=torch.float32)), True),
        ("3-D", make(x=_t(2, 3, width, device=device)), True),
        ("padded rows", make(x=_t(4, width + 16, device=device)[:, :width]), True),
        ("fp64", make(x=_t(4, width, device=device, dtype=torch.float64)), False),
        ("transposed", make(x=_t(width, 4, device=device).t()), False),
        ("meta", make(x=_t(4, width, device="meta")), False),
    ]


def test_static_quant_supports_args(device: str) -> None:
    def make(x: Any = None, scale: Any = None, fp8_dtype: Any = torch.float8_e4m3fn) -> Any:
        x = _t(4, 48, device=device) if x is None else x
        return x, torch.tensor([0.1], device=device) if scale is None else scale, fp8_dtype

    op = ops.static_scaled_fp8_quant
    _check(op, _scale_cases(device, make) + _row_cases(device, make, 48))
    _check(op, [("1-D", make(x=_t(48, device=device)), True)])


def test_dynamic_quant_supports_args(device: str) -> None:
    def make(
        x: Any = None, scale: Any = None, fp8_dtype: Any = torch.float8_e4m3fn
    ) -> tuple[Any, ...]:
        x = _t(4, 48, device=device) if x is None else x
        return x, True, scale, fp8_dtype

    op = ops.dynamic_scaled_fp8_quant
    _check(op, _scale_cases(device, make) + _row_cases(device, make, 48))  # scale = scale_ub
    _check(
        op, [("no scale_ub", make(), True), ("0-D", make(x=torch.ones((), device=device)), False)]
    )


def test_silu_and_mul_static_fp8_quant_supports_args(device: str) -> None:
    def make(x: Any = None, scale: Any = None, fp8_dtype: Any = torch.float8_e4m3fn) -> Any:
        x = _t(4, 48, device=device) if x is None else x
        return x, torch.tensor([0.1], device=device) if scale is None else scale, fp8_dtype

    op = ops.silu_and_mul_static_fp8_quant
    _check(op, _scale_cases(device, make) + _row_cases(device, make, 48))
    _check(op, [("odd width", make(x=_t(4, 47, device=device)), False)])


def test_norm_quant_supports_args(device: str) -> None:
    def make(
        x: Any = None,
        scale: Any = None,
        fp8_dtype: Any = torch.float8_e4m3fn,
        weight: Any = "ones",
    ) -> tuple[Any, ...]:
        x = _t(4, 48, device=device) if x is None else x
        if isinstance(weight, str):
            weight = torch.ones(x.shape[-1], device=device, dtype=x.dtype)
        scale = torch.tensor([0.1], device=device) if scale is None else scale
        return x, weight, 1e-6, scale, fp8_dtype

    def with_residual(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        x, *rest = make(*args, **kwargs)
        return (x, torch.randn_like(x), *rest)

    x = _t(4, 48, device=device)
    weight_cases = [
        ("no weight", make(weight=None), True),
        ("weight dtype", make(weight=torch.ones(48, device=device)), False),
        ("weight size", make(weight=torch.ones(47, device=device, dtype=x.dtype)), False),
        ("weight strided", make(weight=_t(96, device=device)[::2]), False),
        ("meta weight", make(weight=torch.ones(48, device="meta", dtype=x.dtype)), False),
    ]
    op, fused = ops.rms_norm_static_fp8_quant, ops.fused_add_rms_norm_static_fp8_quant
    _check(op, _scale_cases(device, make) + _row_cases(device, make, 48) + weight_cases)
    _check(fused, [(n, with_residual(x=a[0], weight=a[1], scale=a[3], fp8_dtype=a[4]), e)
                   for n, a, e in _scale_cases(device, make) + _row_cases(device, make, 48)
                   + weight_cases])  # fmt: skip
    residual_cases = [
        ("padded residual", (x, _t(4, 64, device=device)[:, :48]), True),
        ("residual dtype", (x, x.float()), False),
        ("residual shape", (x, x[:3]), False),
        ("transposed residual", (x, _t(48, 4, device=device).t()), False),
        ("meta residual", (x, x.to("meta")), False),
    ]
    scale = torch.tensor([0.1], device=device)
    _check(fused, [(n, (*a, None, 1e-6, scale), e) for n, a, e in residual_cases])


# -- exact rounding ------------------------------------------------------------------------------


def _boundary_values(device: str) -> torch.Tensor:
    """Every fp8 value, the midpoints between neighbours (ties: round to even), values just off
    them, the subnormal range, saturation, infinities and NaN."""
    grid = torch.arange(256, dtype=torch.uint8).view(torch.float8_e4m3fn).float()
    grid = grid[grid.isfinite()].sort().values
    midpoints = (grid[:-1] + grid[1:]) / 2
    near = torch.cat((midpoints * (1 + 2**-20), midpoints * (1 - 2**-20)))
    special = torch.tensor([2**-7, 2**-10, 3 * 2**-11, 450.0, 464.0, 1e30, -1e30,
                            float("inf"), -float("inf"), float("nan")])  # fmt: skip
    return torch.cat((grid, midpoints, near, special)).to(device)


def test_fp8_values_round_to_nearest_even(device: str) -> None:
    """Quantized with scale 1, every value matches torch's cast of the clamped value."""
    x = _boundary_values(device)
    with ops.static_scaled_fp8_quant.set_priority([PROVIDER]):
        q = ops.static_scaled_fp8_quant(x.view(1, -1), torch.ones(1, device=device))
    expected = x.clamp(-448, 448).to(torch.float8_e4m3fn)
    torch.testing.assert_close(q.float().view(-1), expected.float(), atol=0, rtol=0, equal_nan=True)


# -- dynamic scales ------------------------------------------------------------------------------


def _dynamic(device: str, *args: Any) -> tuple[Any, Any]:
    op = ops.dynamic_scaled_fp8_quant
    with op.set_priority([PROVIDER]):
        return op(*args), op.native_fn(*args)


@pytest.mark.parametrize("per_token", [False, True])
@pytest.mark.parametrize("width", [48, 9000])  # in one block, looped
def test_nan_and_infinities_follow_native(device: str, per_token: bool, width: int) -> None:
    """A NaN makes its row's (or the tensor's) scale NaN and its values NaN; an infinity makes
    the scale infinite, finite values 0 and itself NaN; other rows are untouched."""
    x = _t(4, width, device=device)
    x[0, 3], x[1, 5], x[2, 7] = float("nan"), float("inf"), -float("inf")
    (q, scales), (q_native, scales_native) = _dynamic(device, x, per_token)
    assert_outputs_close(ops.dynamic_scaled_fp8_quant, (q, scales), (q_native, scales_native))
    if per_token:
        assert scales[0].isnan().all() and scales[1:3].isinf().all()
        assert scales[3].isfinite().all() and q[3].float().isfinite().all()
    else:
        assert scales.isnan().all() and q.float().isnan().all()


def test_scale_ub_bounds_each_rows_amax(device: str) -> None:
    x = _t(3, 64, device=device)
    x[1, 2] = float("inf")
    ub = torch.tensor([0.5], device=device)
    (q, scales), expected = _dynamic(device, x, True, ub)
    assert_outputs_close(ops.dynamic_scaled_fp8_quant, (q, scales), expected)
    torch.testing.assert_close(scales, torch.full((3, 1), 0.5 / 448, device=device))
    assert q.float()[1, 2] == 448  # the infinity saturates


@pytest.mark.parametrize(
    "shape", [(0, 64), (3, 0), (0,)], ids=["no rows", "no columns", "empty 1-D"]
)
@pytest.mark.parametrize("per_token", [False, True])
def test_empty_inputs_get_the_floor_scale(
    device: str, shape: tuple[int, ...], per_token: bool
) -> None:
    x = torch.empty(shape, device=device, dtype=torch.bfloat16)
    result, expected = _dynamic(device, x, per_token)
    assert_outputs_close(ops.dynamic_scaled_fp8_quant, result, expected)


@pytest.mark.parametrize("shape", [(1, 48), (48,), (1, 9000), (5, 48), (2, 3, 9000)])
def test_per_tensor_scale_of_one_row_or_many(device: str, shape: tuple[int, ...]) -> None:
    """One row takes the per-token kernels (one pass); more take the amax and quantize kernels;
    the scale is bit for bit native's either way."""
    x = torch.randn(shape, device=device).to(torch.bfloat16) * 3
    (q, scale), (q_native, scale_native) = _dynamic(device, x, False)
    assert scale.shape == (1,)
    torch.testing.assert_close(scale, scale_native, atol=0, rtol=0)
    assert_outputs_close(ops.dynamic_scaled_fp8_quant, (q, scale), (q_native, scale_native))


@pytest.mark.parametrize(
    ("row_blocks", "chunks", "tiles"),
    [(1, 1, 1), (512, 1, 1), (2048, 1, 1), (2049, 1, 2), (8192, 1, 4), (512, 8, 2), (10**6, 1, 16)],
)
def test_amax_programs_stay_within_the_atomics_budget(
    row_blocks: int, chunks: int, tiles: int
) -> None:
    """One tile per program while the atomics allow it (parallel reads); folded beyond."""
    from ir_triton.kernels import quant

    assert quant.amax_tiles(row_blocks, chunks) == tiles
    if tiles < quant.AMAX_TILES[-1]:
        assert (row_blocks + tiles - 1) // tiles * chunks <= quant.AMAX_MAX_ATOMICS


@pytest.mark.parametrize("atomics", [1, 3])
def test_amax_programs_that_fold_several_tiles(
    device: str, monkeypatch: pytest.MonkeyPatch, atomics: int
) -> None:
    """Few atomics allowed: each amax program folds several tiles (what large tensors do);
    the scale is still native's, bit for bit."""
    from ir_triton.kernels import quant

    monkeypatch.setattr(quant, "AMAX_MAX_ATOMICS", atomics)
    x = torch.randn(67, 300, device=device).to(torch.bfloat16) * 3
    x[60, 7] = 40.0  # the amax, in a late tile
    (q, scale), (q_native, scale_native) = _dynamic(device, x, False)
    torch.testing.assert_close(scale, scale_native, atol=0, rtol=0)
    assert_outputs_close(ops.dynamic_scaled_fp8_quant, (q, scale), (q_native, scale_native))


# -- division modes -------------------------------------------------------------------------------


def _division_cases(device: str) -> list[tuple[IrOp, Any, Any, tuple[Any, ...]]]:
    """(op, provider object, provider, arguments) of every kernel that divides by a scale."""
    from ir_kernels_cuda import composite, quant

    torch.manual_seed(0)
    x, wide = _t(37, 320, device=device) * 3, _t(37, 640, device=device) * 3
    scale = torch.tensor([0.0123], device=device)
    weight = _t(320, device=device)
    norm_quant = composite.NORM_QUANT
    return [
        (ops.static_scaled_fp8_quant, quant.STATIC_QUANT, quant.STATIC_QUANT.provider,
         (x, scale)),
        (ops.dynamic_scaled_fp8_quant, quant.DYNAMIC_QUANT, quant.DYNAMIC_QUANT.provider,
         (x, False, None)),
        (ops.dynamic_scaled_fp8_quant, quant.DYNAMIC_QUANT, quant.DYNAMIC_QUANT.provider,
         (x, True, None)),
        (ops.rms_norm_static_fp8_quant, norm_quant, norm_quant.rms_norm_static_fp8_quant,
         (x, weight, 1e-6, scale)),
        (ops.fused_add_rms_norm_static_fp8_quant, norm_quant,
         norm_quant.fused_add_rms_norm_static_fp8_quant, (x, x.flip(0), weight, 1e-6, scale)),
        (ops.silu_and_mul_static_fp8_quant, composite.SILU_AND_MUL_QUANT,
         composite.SILU_AND_MUL_QUANT.provider, (wide, scale)),
    ]  # fmt: skip


@pytest.mark.parametrize("exact", [True, False])
def test_both_division_modes_match_native(
    device: str, monkeypatch: pytest.MonkeyPatch, exact: bool
) -> None:
    """``exact_division`` on (the cuda default) and off: the same kernels, within the ops'
    tolerance of native (one fp8 step); exact static quantization equals native bit for bit."""
    import dataclasses

    for op, owner, provider, args in _division_cases(device):
        launch = dataclasses.replace(owner.launch, exact_division=exact)
        monkeypatch.setattr(owner, "launch", launch)
        result, expected = provider(*args), op.native_fn(*args)
        assert_outputs_close(op, result, expected)
        if exact and op is ops.static_scaled_fp8_quant:
            assert torch.equal(result.view(torch.uint8), expected.view(torch.uint8))
