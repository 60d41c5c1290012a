"""ir_op.testing.conformance: its grids, and that each check fails for the bug it is there for."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, register_op
from ir_op.testing.conformance import (
    CASE_KINDS,
    CONTIGUOUS,
    FULL_HIDDEN,
    FULL_TOKENS,
    LAST_DIM_STRIDED,
    NAN_INF,
    PADDED_ROWS,
    Case,
    build_cases,
    check_dispatch,
    check_matches_native,
    check_maybe_inplace,
    check_opcheck,
    check_supports_args_is_a_bool,
    make_args,
)

DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def toy_norm(x: Tensor, weight: Tensor | None, epsilon: float) -> Tensor:
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.square().mean(-1, keepdim=True) + epsilon)).to(x.dtype)


def toy_inputs(
    num_tokens: int, hidden_size: int, dtype: torch.dtype, device: str | None = None
) -> tuple[object, ...]:
    return torch.randn(num_tokens, hidden_size, device=device).to(dtype), None, 1e-6


def toy_add(x: Tensor, x_other: Tensor) -> tuple[Tensor, Tensor]:
    total = x + x_other
    return total * 2, total


def toy_add_inputs(
    num_tokens: int, hidden_size: int, dtype: torch.dtype, device: str | None = None
) -> tuple[object, ...]:
    return tuple(torch.randn(num_tokens, hidden_size, device=device).to(dtype) for _ in range(2))


def row_layout(x: Tensor, weight: Tensor | None, epsilon: float) -> bool:
    return bool(x.stride(-1) == 1)


@pytest.fixture
def norm(isolated: dict[str, IrOp]) -> IrOp:
    op = register_op(toy_norm)
    op.register_input_generator(toy_inputs)
    return op


def case(layout: str = CONTIGUOUS, special: str | None = None, tokens: int = 7) -> Case:
    return Case("toy_norm", torch.float32, tokens, 33, layout, special)


def register(op: IrOp, name: str, fn: Callable[..., object], **options: object) -> None:
    options.setdefault("supports_args", row_layout)
    op.register_impl(name, **options)(fn)  # type: ignore[arg-type]


# -- grids --------------------------------------------------------------------------------------


def test_full_grid_covers_the_issue(norm: IrOp) -> None:
    cases = build_cases("numerics", [norm], emulated=False)
    shapes = {(c.dtype, c.num_tokens, c.hidden_size, c.layout) for c in cases if not c.special}
    for dtype in DTYPES:
        for t in FULL_TOKENS:
            for h in FULL_HIDDEN:
                assert (dtype, t, h, CONTIGUOUS) in shapes and (dtype, t, h, PADDED_ROWS) in shapes
        for h in FULL_HIDDEN:
            assert (dtype, 0, h, CONTIGUOUS) in shapes
            assert (dtype, 7, h, LAST_DIM_STRIDED) in shapes
            assert Case("toy_norm", dtype, 7, h, special=NAN_INF) in cases
    assert {1, 7, 83, 512, 4096} <= set(FULL_TOKENS)
    assert {8, 768, 769, 4096, 5120, 8192} <= set(FULL_HIDDEN)


def test_emulated_grid_is_small_but_has_every_kind_of_input(norm: IrOp) -> None:
    cases = build_cases("numerics", [norm], emulated=True)
    assert len(cases) < 60
    assert {c.dtype for c in cases} == set(DTYPES)
    assert {c.layout for c in cases} == {CONTIGUOUS, PADDED_ROWS, LAST_DIM_STRIDED}
    assert any(c.special == NAN_INF for c in cases)
    assert any(c.num_tokens == 0 for c in cases)
    assert any(c.hidden_size % 2 for c in cases)  # odd widths
    assert any(c.hidden_size > 8192 for c in cases)  # wider than one block
    assert max(c.num_tokens * c.hidden_size for c in cases) <= 400_000


def test_variants_come_from_the_table(norm: IrOp) -> None:
    cases = build_cases("numerics", [norm], emulated=True, variants={"toy_norm": [{"k": 2}]})
    assert {c.options for c in cases} == {(), (("k", 2),)}
    assert Case("toy_norm", torch.bfloat16, 7, 769, options=(("k", 2),)).id == (
        "toy_norm-bf16-7x769-contiguous-k=2"
    )


def test_every_op_with_variants_exists_and_takes_them() -> None:
    from ir_op.testing.conformance import INPUT_VARIANTS

    for name, variants in INPUT_VARIANTS.items():
        op = IrOp.registry[name]
        for options in variants:
            args = op.generate_inputs(num_tokens=2, hidden_size=64, dtype=torch.float32, **options)
            assert args, (name, options)


def test_rotary_takes_every_hidden_size_of_the_grid() -> None:
    """Hidden sizes without an even head size up to 128 become one head of that size."""
    for hidden in FULL_HIDDEN:
        case = Case("rotary_embedding", torch.float16, 3, hidden)
        _, query, _, head_size, cache, *_ = make_args(case, "cpu")
        assert query.shape == (3, hidden) and hidden % head_size == 0
        assert cache.shape[1] % 2 == 0 and cache.shape[1] <= head_size
        if hidden in (769, 12289):
            assert head_size == hidden and cache.shape[1] == hidden - 1
            assert cache.numel() <= 2**20
    options = (("head_size", 257),)  # a case's own options win
    assert (
        make_args(Case("rotary_embedding", torch.float16, 3, 771, options=options), "cpu")[3] == 257
    )


def test_emulated_nan_inf_cases_avoid_cpu_gelus_artifact() -> None:
    from ir_op.testing.conformance import EMULATED_NAN_INF_OPTIONS

    for name, options in EMULATED_NAN_INF_OPTIONS.items():
        op = IrOp.registry[name]
        emulated = [c for c in build_cases("numerics", [op], emulated=True) if c.special]
        assert emulated and all(dict(c.options) == options for c in emulated)
        full = [c for c in build_cases("numerics", [op], emulated=False) if c.special]
        assert full and all(c.options == () for c in full)  # real hardware: every option
    x = torch.full((64,), float("inf"))
    assert torch.nn.functional.gelu(x)[0].isnan(), "torch's CPU GELU is fixed: drop the entry"


def test_every_kind_has_unique_ids(norm: IrOp) -> None:
    for kind in CASE_KINDS:
        for emulated in (False, True):
            ids = [c.id for c in build_cases(kind, [norm], emulated=emulated)]
            assert len(ids) == len(set(ids)), kind
    with pytest.raises(ValueError, match="unknown case kind 'speed'"):
        build_cases("speed", [norm], emulated=True)


def test_inplace_cases_only_for_inplace_ops(norm: IrOp) -> None:
    assert build_cases("inplace", [norm], emulated=True) == []
    add = register_op(allow_inplace=True)(toy_add)
    assert build_cases("inplace", [add], emulated=True)


def test_inputs_follow_the_case(norm: IrOp) -> None:
    x = make_args(case(PADDED_ROWS), "cpu")[0]
    assert x.shape == (7, 33) and x.stride() == (38, 1)
    assert x.as_strided((7, 38), (38, 1))[:, 33:].isnan().all()  # the padding is poisoned
    torch.testing.assert_close(x, make_args(case(), "cpu")[0])  # same values as contiguous
    assert make_args(case(LAST_DIM_STRIDED), "cpu")[0].stride() == (1, 7)
    x = make_args(case(special=NAN_INF), "cpu")[0]
    assert x[0, 1].isnan() and x[1, 2] == float("inf") and x[2, 3] == float("-inf")
    assert torch.equal(make_args(case(), "cpu")[0], make_args(case(), "cpu")[0])


# -- each check fails for its bug ---------------------------------------------------------------


def test_a_correct_provider_passes(norm: IrOp) -> None:
    register(norm, "good", toy_norm)
    for c in (case(), case(PADDED_ROWS), case(special=NAN_INF), case(tokens=0)):
        check_matches_native(c, "good", "cpu", expect_supported=True)
        check_dispatch(c, "good", "cpu")
        check_supports_args_is_a_bool(c, "good", "cpu")
    check_matches_native(case(LAST_DIM_STRIDED), "good", "cpu", expect_supported=False)
    check_dispatch(case(LAST_DIM_STRIDED), "good", "cpu")
    check_opcheck(case(), "good", "cpu")


def test_wrong_values_fail(norm: IrOp) -> None:
    def sloppy(x: Tensor, weight: Tensor | None, epsilon: float) -> Tensor:
        return toy_norm(x, weight, epsilon) * 1.01

    register(norm, "sloppy", sloppy)
    with pytest.raises(AssertionError, match="Tensor-likes are not close"):
        check_matches_native(case(), "sloppy", "cpu", expect_supported=True)


def test_reading_past_the_row_fails(norm: IrOp) -> None:
    def whole_buffer(x: Tensor, weight: Tensor | None, epsilon: float) -> Tensor:
        rows = x.as_strided((x.shape[0], x.stride(0)), (x.stride(0), 1))
        return toy_norm(rows, weight, epsilon)[:, : x.shape[1]].contiguous()

    register(norm, "overreads", whole_buffer)
    check_matches_native(case(), "overreads", "cpu", expect_supported=True)
    with pytest.raises(AssertionError):
        check_matches_native(case(PADDED_ROWS), "overreads", "cpu", expect_supported=True)


def test_writing_an_input_fails(norm: IrOp) -> None:
    def scribbles(x: Tensor, weight: Tensor | None, epsilon: float) -> Tensor:
        out = toy_norm(x, weight, epsilon)
        x[0, 0] = 0
        return out

    register(norm, "scribbles", scribbles)
    with pytest.raises(AssertionError, match="changed input 0"):
        check_matches_native(case(), "scribbles", "cpu", expect_supported=True)


def test_dropping_nan_fails(norm: IrOp) -> None:
    def nanless(x: Tensor, weight: Tensor | None, epsilon: float) -> Tensor:
        return toy_norm(x, weight, epsilon).nan_to_num()

    register(norm, "nanless", nanless)
    check_matches_native(case(), "nanless", "cpu", expect_supported=True)
    with pytest.raises(AssertionError):
        check_matches_native(case(special=NAN_INF), "nanless", "cpu", expect_supported=True)


def test_predicate_that_accepts_too_much_fails(norm: IrOp) -> None:
    register(norm, "greedy", toy_norm, supports_args=lambda x, weight, epsilon: True)
    with pytest.raises(AssertionError, match="returned True .* expected False"):
        check_matches_native(case(LAST_DIM_STRIDED), "greedy", "cpu", expect_supported=False)


def test_predicate_that_is_not_a_bool_fails(norm: IrOp) -> None:
    register(
        norm, "tensor_answer", toy_norm, supports_args=lambda x, weight, epsilon: x.sum() == x.sum()
    )
    with pytest.raises(TypeError, match="must return a Python bool"):
        check_supports_args_is_a_bool(case(), "tensor_answer", "cpu")


def test_predicate_that_changes_on_fake_tensors_fails(norm: IrOp) -> None:
    from torch._subclasses.fake_tensor import FakeTensor

    register(
        norm,
        "fake_averse",
        toy_norm,
        supports_args=lambda x, weight, epsilon: not isinstance(x, FakeTensor),
    )
    with pytest.raises(AssertionError, match="on FakeTensors"):
        check_supports_args_is_a_bool(case(), "fake_averse", "cpu")


def test_nondeterministic_provider_fails_dispatch(norm: IrOp) -> None:
    def noisy(x: Tensor, weight: Tensor | None, epsilon: float) -> Tensor:
        return toy_norm(x, weight, epsilon) + torch.rand(()) * 1e-6

    register(norm, "noisy", noisy)
    with pytest.raises(AssertionError, match="wrap=True"):
        check_dispatch(case(), "noisy", "cpu")


def test_unsupported_provider_fails_on_its_platform(norm: IrOp) -> None:
    register(norm, "absent", toy_norm, supported=False, unsupported_reason="no such GPU")
    with pytest.raises(AssertionError, match="unsupported in a session for its platform: no such"):
        check_matches_native(case(), "absent", "cpu", expect_supported=True)


def test_inplace_provider_that_does_not_write_in_place_fails(isolated: dict[str, IrOp]) -> None:
    add = register_op(allow_inplace=True)(toy_add)
    add.register_input_generator(toy_add_inputs)

    def really(x: Tensor, x_other: Tensor) -> tuple[Tensor, Tensor]:
        x_other.add_(x)
        x.copy_(x_other).mul_(2)
        return x, x_other

    add.register_impl("inplace", inplace=True, functional=toy_add)(really)
    add.register_impl("claims", inplace=True)(toy_add)
    c = Case("toy_add", torch.float32, 7, 33)
    for layout in (CONTIGUOUS, PADDED_ROWS):
        check_maybe_inplace(Case("toy_add", torch.float32, 7, 33, layout), "inplace", "cpu")
    check_opcheck(c, "inplace", "cpu")
    with pytest.raises(AssertionError, match="did not write output 0 into its activation 'x'"):
        check_maybe_inplace(c, "claims", "cpu")


# -- the pytest class ---------------------------------------------------------------------------


def test_suite_class_generates_and_runs(tmp_path: Path) -> None:
    (tmp_path / "test_toy.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import Tensor
            from ir_op import register_op
            from ir_op.testing.conformance import ProviderConformance


            @register_op
            def toy_scale(x: Tensor, factor: float) -> Tensor:
                return x * factor


            @toy_scale.register_input_generator
            def _inputs(num_tokens, hidden_size, dtype, device=None):
                return torch.randn(num_tokens, hidden_size, device=device).to(dtype), 3.0


            def fits(x: Tensor, factor: float) -> bool:
                return bool(x.stride(-1) == 1)


            @toy_scale.register_impl("toy", supports_args=fits)
            def scale(x: Tensor, factor: float) -> Tensor:
                return x * factor


            class TestToy(ProviderConformance):
                provider = "toy"
                tokens = (1, 3)
                hidden_sizes = (8, 9)


            class TestOtherPlatform(ProviderConformance):
                provider = "toy"
                platform = "xpu"
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-p", "ir_op.testing.pytest_plugin",
         "--device", "cpu", "-q", "-p", "no:cacheprovider", "-rs"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
        env={"IR_OP_DISABLE_PLUGINS": "1", "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    # TestToy: 3 dtypes x (2 tokens x 2 widths x 2 layouts + 2 widths x 3 others) numerics,
    # 6 dispatch, 3 opcheck, 3 fake, 1 gradients; skipped: maybe_inplace (no in-place op), the
    # CUDA graph test (CPU tensors), bad input (the op has no validator), weight dtypes (no
    # weight) and the other platform's nine.
    assert "55 passed" in summary and "13 skipped" in summary, summary
    assert "runs on the xpu platform; this session tests cpu" in result.stdout
