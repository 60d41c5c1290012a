"""The conformance suite every kernel set's provider must pass, written once.

A kernel set's tests subclass :class:`ProviderConformance` and name their provider and platform::

    from ir_op.testing.conformance import ProviderConformance

    class TestCudaConformance(ProviderConformance):
        provider = "cuda"
        platform = "cuda"

pytest then generates, for every op in the registry that has the provider, tests from the op's
own input generator (``op.generate_inputs``) and tolerances (``op.get_tolerance``), so a new op
is covered as soon as it has a generator:

- ``test_matches_native``: the provider against the native function over dtypes x tokens x
  hidden sizes, for contiguous and row-padded inputs (the padding holds NaN, which a kernel
  reading past the end of a row would leak), inputs whose last dimension is not contiguous
  (which ``supports_args`` must reject), empty inputs and NaN/inf; inputs must stay untouched;
- ``test_dispatch_equals_direct_call``: ``op(...)`` with torch wrap on and off picks the provider
  (native for arguments it rejects) and returns bit for bit what a direct call returns;
- ``test_maybe_inplace``: for in-place capable ops, ``maybe_inplace`` matches native, an
  in-place provider writes its results into the activations it was given, and the overload's
  torch operator returns new tensors (PyTorch's rule for custom operators);
- ``test_opcheck``: ``torch.library.opcheck`` of the op (and ``maybe_inplace``) while it
  dispatches to the provider;
- ``test_supports_args_is_a_bool``: on FakeTensors with static and with symbolic shapes the
  predicate returns a Python ``bool``, the same as on real tensors;
- ``test_cuda_graph_replay_equals_eager`` (marked ``gpu``): a call captured in a CUDA graph and
  replayed on new inputs equals an eager call on them;
- ``test_rejects_bad_input``: every op's arguments spoiled one at a time
  (:mod:`ir_op.testing.bad_inputs`) raise a ``TypeError``/``ValueError`` naming the op and the
  argument with the provider first, torch wrap on and off; ``supports_args`` answers a bool
  and no global state changes;
- ``test_gradients``: with inputs that require grad the op's gradients equal native's, or a
  non-differentiable op refuses (:mod:`ir_op.testing.semantics`);
- ``test_weight_dtypes``: norm weights of another dtype than ``x``, and float64 inputs, match
  the native function.

On real hardware the full grid runs (tokens :data:`FULL_TOKENS` x hidden :data:`FULL_HIDDEN`);
on an emulated platform (Triton's interpreter on the CPU, slow) a subset that still has every
dtype, odd and looped row widths, padding, a non-contiguous last dimension, empty inputs and
NaN/inf; with ``--conformance-grid smoke`` (the CI's older torches) that grid in bfloat16 only.
Sessions for other platforms skip the suite. Subclasses may override the class
attributes and :meth:`ProviderConformance.expect_supported`.

The ``check_*`` functions are the tests' bodies, usable on their own.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor

from ir_op.impl import IrOpImpl
from ir_op.op import IrOp
from ir_op.testing import preserved_priorities
from ir_op.testing.bad_inputs import BadInput, bad_input_cases, check_rejects_bad_input
from ir_op.testing.pytest_plugin import DeviceUnderTest, conformance_grid, device_under_test
from ir_op.testing.semantics import check_gradients, check_weight_dtypes, weight_dtype_pairs
from ir_op.wrap import enable_torch_wrap

FULL_TOKENS = (1, 7, 83, 512, 4096)
FULL_HIDDEN = (8, 768, 769, 4096, 5120, 8192, 12289)
"""The issue's hidden sizes, plus one wider than any single-block kernel (odd, so masked)."""
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)

CONTIGUOUS = "contiguous"
PADDED_ROWS = "padded_rows"
"""Activations are a column slice of a wider buffer: rows ``ROW_PADDING`` elements apart more."""
LAST_DIM_STRIDED = "last_dim_strided"
"""Activations whose last dimension is not contiguous (a transposed copy)."""
LAYOUTS = (CONTIGUOUS, PADDED_ROWS, LAST_DIM_STRIDED)
ROW_PADDING = 5
"""Odd, so padded rows do not start on 16-byte boundaries."""

NAN_INF = "nan_inf"
"""NaN, +inf and -inf in the first rows of the first floating-point activation."""

INPUT_VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "rms_norm": ({"with_weight": False}, {"variance_size": 64}),
    "fused_add_rms_norm": ({"with_weight": False}, {"variance_size": 64}),
    "gelu_and_mul_sparse": ({"approximate": "none"}, {"std_multiplier": -3.0}),
    "gelu_and_mul": ({"approximate": "tanh"},),
    "rotary_embedding": (
        {"is_neox_style": False},
        {"with_key": False},
        {"per_head_layout": True},
        {"rotary_dim": 32},
        {"is_neox_style": False, "rotary_dim": 32, "cache_dtype": torch.float32},
    ),
    "static_scaled_fp8_quant": ({"calibration": 0.5},),
    "dynamic_scaled_fp8_quant": ({"per_token": True}, {"per_token": True, "scale_ub": 2.0}),
    "rms_norm_static_fp8_quant": ({"with_weight": False}, {"calibration": 0.5}),
    "fused_add_rms_norm_static_fp8_quant": ({"with_weight": False}, {"calibration": 0.5}),
    "silu_and_mul_static_fp8_quant": ({"calibration": 0.5},),
}
"""Generator options other than the defaults, per op, tried on a few shapes.

Ops not listed run with their generator's defaults only; add an entry when an op's generator
grows an option that changes which code path a provider takes. (``calibration=0.5`` scales make
the largest values saturate; ``scale_ub=2.0`` bounds the amax of most rows.)
"""


def _rotary_shape_options(hidden_size: int) -> dict[str, Any]:
    # The generator's heads are of an even size up to 128 that divides the hidden size; a hidden
    # size without one (769, 12289) becomes one head of that size, with a partial rotation, and
    # fewer positions keep its cos/sin cache (max_position x rotary_dim) about 2**20 elements.
    if math.gcd(hidden_size, 128) >= 2:
        return {}
    return {"head_size": hidden_size, "max_position": max(16, 2**20 // hidden_size)}


SHAPE_OPTIONS: dict[str, Callable[[int], dict[str, Any]]] = {
    "rotary_embedding": _rotary_shape_options,
}
"""Generator options an op needs to take a grid's hidden size, per op: ``f(hidden_size)``.

``rotary_embedding``'s generator cannot split an odd hidden size into heads of its default
size: such a hidden size is one odd-sized head (partially rotated, as its rotary width is even),
so the grid's odd widths still reach the kernels, with a cache of fewer positions (8192 rows of
12288 would take seconds to build). A case's own options take precedence.
"""
EMULATED_NAN_INF_OPTIONS: dict[str, dict[str, Any]] = {"gelu_and_mul": {"approximate": "tanh"}}
"""Generator options of the NaN/inf cases on an emulated platform, per op, where the native
function on the CPU (the reference there) departs from CUDA's at the injected values: torch's
vectorized CPU GELU of the erf form returns NaN at +inf, where CUDA's (and the math) give +inf."""

_DTYPE_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}


def _dtype_name(dtype: torch.dtype) -> str:
    return _DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))


@dataclass(frozen=True)
class Case:
    """One set of inputs for one op: what the generator gets and how the inputs are laid out."""

    op_name: str
    dtype: torch.dtype
    num_tokens: int
    hidden_size: int
    layout: str = CONTIGUOUS
    special: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    """Extra generator keyword arguments, as sorted pairs (hashable)."""

    @property
    def id(self) -> str:
        parts = [
            self.op_name,
            _dtype_name(self.dtype),
            f"{self.num_tokens}x{self.hidden_size}",
            self.layout,
        ]
        if self.special:
            parts.append(self.special)
        parts += [f"{k}={v}" for k, v in self.options]
        return "-".join(parts)

    @property
    def op(self) -> IrOp:
        return IrOp.registry[self.op_name]


# -- case grids ---------------------------------------------------------------------------------

NUMERICS = "numerics"
DISPATCH = "dispatch"
INPLACE = "inplace"
OPCHECK = "opcheck"
FAKE = "fake"
GRAPH = "graph"
CASE_KINDS = (NUMERICS, DISPATCH, INPLACE, OPCHECK, FAKE, GRAPH)

# Emulated runs: Triton's interpreter costs milliseconds per program, so shapes stay small;
# they still cover one row, several rows per program with a partial last one, odd widths, a
# full single block and the looped kernels.
_EMULATED_SHAPES = ((1, 8), (7, 769), (83, 8), (3, 4096), (2, 12289))
_EMULATED_WIDE_SHAPES = ((83, 768), (64, 5120))


def _variants(
    op: IrOp, variants: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[tuple[tuple[str, Any], ...]]:
    return [tuple(sorted(v.items())) for v in variants.get(op.name, ())]


def build_cases(
    kind: str,
    ops: Sequence[IrOp],
    *,
    emulated: bool,
    dtypes: Sequence[torch.dtype] = FLOAT_DTYPES,
    tokens: Sequence[int] = FULL_TOKENS,
    hidden_sizes: Sequence[int] = FULL_HIDDEN,
    variants: Mapping[str, Sequence[Mapping[str, Any]]] = INPUT_VARIANTS,
) -> list[Case]:
    """The cases of one test kind (one of :data:`CASE_KINDS`) for ``ops``."""
    if kind not in CASE_KINDS:
        raise ValueError(f"unknown case kind {kind!r}; valid: {', '.join(CASE_KINDS)}")
    cases: list[Case] = []
    for op in ops:
        name = op.name
        if kind == NUMERICS:
            cases += _numerics_cases(op, emulated, dtypes, tokens, hidden_sizes, variants)
        elif kind == DISPATCH:
            for dtype in dtypes:
                cases.append(Case(name, dtype, 7, 769))
                cases.append(Case(name, dtype, 7, 769, LAST_DIM_STRIDED))
        elif kind == INPLACE:
            if not op.allow_inplace:
                continue
            shapes = ((7, 769),) if emulated else ((7, 769), (83, 4096), (512, 8192), (3, 12289))
            for dtype in dtypes:
                for t, h in shapes:
                    cases.append(Case(name, dtype, t, h))
                    cases.append(Case(name, dtype, t, h, PADDED_ROWS))
            if emulated:  # the looped kernels write what they read: check that too
                cases.append(Case(name, dtypes[0], 2, 12289))
                cases.append(Case(name, dtypes[0], 2, 12289, PADDED_ROWS))
        elif kind == OPCHECK:
            cases += [Case(name, dtype, 5, 48) for dtype in dtypes]
        elif kind == FAKE:
            for layout in LAYOUTS:
                cases.append(Case(name, dtypes[0], 7, 769, layout))
        elif kind == GRAPH:
            for dtype in dtypes:
                for t in (1, 7, 64, 256):
                    cases.append(Case(name, dtype, t, 4096))
                cases.append(Case(name, dtype, 7, 769, PADDED_ROWS))
    return list(dict.fromkeys(cases))  # in order, without repeats


def _numerics_cases(
    op: IrOp,
    emulated: bool,
    dtypes: Sequence[torch.dtype],
    tokens: Sequence[int],
    hidden_sizes: Sequence[int],
    variants: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[Case]:
    name = op.name
    cases: list[Case] = []
    if emulated:
        nan_inf = tuple(sorted(EMULATED_NAN_INF_OPTIONS.get(name, {}).items()))
        for dtype in dtypes:
            cases += [Case(name, dtype, t, h) for t, h in _EMULATED_SHAPES]
            cases.append(Case(name, dtype, 0, 769))
            cases += [Case(name, dtype, t, h, PADDED_ROWS) for t, h in ((7, 769), (2, 12289))]
            cases.append(Case(name, dtype, 7, 769, LAST_DIM_STRIDED))
            cases.append(Case(name, dtype, 7, 769, special=NAN_INF, options=nan_inf))
        wide = torch.bfloat16 if torch.bfloat16 in dtypes else dtypes[0]
        cases += [Case(name, wide, t, h) for t, h in _EMULATED_WIDE_SHAPES]
        cases.append(Case(name, wide, 83, 768, PADDED_ROWS))
        cases.append(Case(name, wide, 3, 12289, special=NAN_INF, options=nan_inf))
        for v in _variants(op, variants):
            cases += [Case(name, wide, t, h, options=v) for t, h in ((7, 769), (2, 12289))]
        return cases
    for dtype in dtypes:
        for t in tokens:
            for h in hidden_sizes:
                cases.append(Case(name, dtype, t, h))
                cases.append(Case(name, dtype, t, h, PADDED_ROWS))
        for h in hidden_sizes:
            cases.append(Case(name, dtype, 0, h))
            cases.append(Case(name, dtype, 7, h, LAST_DIM_STRIDED))
            cases.append(Case(name, dtype, 7, h, special=NAN_INF))
        for v in _variants(op, variants):
            cases += [Case(name, dtype, t, h, options=v) for t, h in ((83, 769), (4096, 4096))]
    return cases


# -- inputs -------------------------------------------------------------------------------------


def case_seed(case: Case) -> int:
    """A seed that depends on the case (stable across runs and processes) but not on its layout,
    so the layouts of one shape hold the same values."""
    return zlib.crc32(case.id.replace(f"-{case.layout}", "").encode())


def _padded(t: Tensor) -> Tensor:
    width = t.shape[-1]
    if t.is_floating_point():
        buffer = torch.full(
            (*t.shape[:-1], width + ROW_PADDING), float("nan"), dtype=t.dtype, device=t.device
        )
    else:
        buffer = torch.zeros((*t.shape[:-1], width + ROW_PADDING), dtype=t.dtype, device=t.device)
    view = buffer[..., :width]
    view.copy_(t)
    return view


def _last_dim_strided(t: Tensor) -> Tensor:
    return t.transpose(-1, -2).contiguous().transpose(-1, -2)


def _inject_nan_inf(args: list[Any], op: IrOp) -> None:
    for i in op.activation_indices:
        t = args[i] if i < len(args) else None
        if isinstance(t, Tensor) and t.is_floating_point() and t.dim() >= 2:
            rows = t.reshape(-1, t.shape[-1])
            values = (float("nan"), float("inf"), float("-inf"))
            for row, value in enumerate(values[: rows.shape[0]]):
                rows[row, min(row + 1, rows.shape[1] - 1)] = value
            return
    raise ValueError(f"op {op.name!r} has no floating-point activation of 2+ dims to put NaN in")


def make_args(case: Case, device: str) -> tuple[Any, ...]:
    """The op's generator's inputs for ``case`` on ``device``, laid out as the case says."""
    op = case.op
    torch.manual_seed(case_seed(case))
    shape_options = SHAPE_OPTIONS.get(op.name)
    options = shape_options(case.hidden_size) if shape_options is not None else {}
    options.update(case.options)
    args = list(
        op.generate_inputs(
            num_tokens=case.num_tokens,
            hidden_size=case.hidden_size,
            dtype=case.dtype,
            device=device,
            **options,
        )
    )
    if case.special == NAN_INF:
        _inject_nan_inf(args, op)
    elif case.special is not None:
        raise ValueError(f"unknown special {case.special!r}; valid: {NAN_INF}")
    if case.layout != CONTIGUOUS:
        transform = {PADDED_ROWS: _padded, LAST_DIM_STRIDED: _last_dim_strided}.get(case.layout)
        if transform is None:
            raise ValueError(f"unknown layout {case.layout!r}; valid: {', '.join(LAYOUTS)}")
        for i in op.activation_indices:
            if i < len(args) and isinstance(args[i], Tensor) and args[i].dim() >= 2:
                args[i] = transform(args[i])
    return tuple(args)


def _clone_args(args: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(a.clone() if isinstance(a, Tensor) else a for a in args)


# -- comparisons --------------------------------------------------------------------------------


def _flatten(result: Any) -> list[Tensor | None]:
    if isinstance(result, (tuple, list)):
        return [r for item in result for r in _flatten(item)]
    if result is None or isinstance(result, Tensor):
        return [result]
    raise TypeError(f"an op returned {type(result).__name__}; expected tensors")


def _comparable(t: Tensor) -> Tensor:
    # assert_close cannot compare fp8 formats directly
    return t.float() if t.is_floating_point() and t.element_size() == 1 else t


def assert_outputs_match(
    actual: Any, expected: Any, op: IrOp, *, exact: bool = False, what: str = ""
) -> None:
    """Same structure, shapes and dtypes; values within ``op``'s tolerance (or ``exact``)."""
    got, want = _flatten(actual), _flatten(expected)
    assert len(got) == len(want), f"{what}: {len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        label = f"{what} output {i}"
        if w is None or g is None:
            assert g is w, f"{label}: {g!r} where {w!r} was expected"
            continue
        assert g.shape == w.shape, f"{label}: shape {tuple(g.shape)}, expected {tuple(w.shape)}"
        assert g.dtype == w.dtype, f"{label}: dtype {g.dtype}, expected {w.dtype}"
        tolerance = {"atol": 0.0, "rtol": 0.0} if exact else op.get_tolerance(w.dtype)
        torch.testing.assert_close(
            _comparable(g), _comparable(w), **tolerance, equal_nan=True, msg=_prefixed(label)
        )


def _prefixed(label: str) -> Callable[[str], str]:
    def message(m: str) -> str:
        return f"{label}: {m}"

    return message


def _assert_unchanged(args: Sequence[Any], before: Sequence[Any], what: str) -> None:
    for i, (a, b) in enumerate(zip(args, before, strict=True)):
        if isinstance(a, Tensor):
            torch.testing.assert_close(
                _comparable(a),
                _comparable(b),
                atol=0.0,
                rtol=0.0,
                equal_nan=True,
                msg=_prefixed(f"{what} changed input {i}"),
            )


# -- checks (the tests' bodies) -----------------------------------------------------------------


def supported_impl(op: IrOp, provider: str) -> IrOpImpl:
    """The provider's impl of ``op``, failing the test if it cannot run here."""
    impl = op.impls.get(provider)
    assert impl is not None, f"op {op.name!r} has no provider {provider!r}"
    assert impl.supported, (
        f"provider {provider!r} of op {op.name!r} is unsupported in a session for its "
        f"platform: {impl.unsupported_reason}"
    )
    return impl


def check_matches_native(
    case: Case, provider: str, device: str, expect_supported: bool
) -> tuple[Any, ...] | None:
    """``supports_args`` answers as expected; when it accepts, the provider matches native
    within tolerance and leaves its inputs untouched. Returns the args when it ran."""
    op = case.op
    impl = supported_impl(op, provider)
    args = make_args(case, device)
    accepted = impl.supports_args(*args)
    assert accepted == expect_supported, (
        f"supports_args of {impl!r} returned {accepted} for {case.id}; expected {expect_supported}"
    )
    if not accepted:
        return None
    expected = op.native_fn(*_clone_args(args))
    before = _clone_args(args)
    with warnings.catch_warnings():
        # Triton's interpreter computes NaN and inf in NumPy, which warns about them
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        actual = impl.functional_fn(*args)
    _assert_unchanged(args, before, f"{impl!r} on {case.id}")
    assert_outputs_match(actual, expected, op, what=f"{impl!r} on {case.id}")
    return args


def check_dispatch(case: Case, provider: str, device: str) -> None:
    """``op(...)`` (wrap on and off) picks the provider for arguments it takes, native for the
    others, and returns bit for bit what calling that implementation directly returns."""
    op = case.op
    impl = supported_impl(op, provider)
    args = make_args(case, device)
    accepted = impl.supports_args(*args)
    chosen = impl if accepted else op.impls["native"]
    direct = chosen.functional_fn(*_clone_args(args))
    with preserved_priorities():
        op.set_default([provider, "native"])
        assert op.dispatch(*args) is chosen, f"dispatch chose {op.dispatch(*args)!r}"
        for wrap in (True, False):
            with enable_torch_wrap(wrap):
                result = op(*args)
            assert_outputs_match(result, direct, op, exact=True, what=f"{case.id}, wrap={wrap}")


def check_maybe_inplace(case: Case, provider: str, device: str) -> None:
    """``maybe_inplace`` matches native; an in-place provider returns the activations it was
    given, now holding the results; the torch operator returns tensors of its own."""
    op = case.op
    impl = supported_impl(op, provider)
    args = make_args(case, device)
    expected = op.native_fn(*_clone_args(args))
    accepted = impl.supports_args(*args)
    with preserved_priorities():
        op.set_default([provider, "native"])
        operator_args = _clone_args(args)
        through_operator = op.maybe_inplace.torch_op(*operator_args)  # type: ignore[attr-defined]
        result = op.maybe_inplace(*args)  # type: ignore[attr-defined]
    assert_outputs_match(result, expected, op, what=f"maybe_inplace on {case.id}")
    assert_outputs_match(
        op._restore_absent_outputs(through_operator, operator_args, {}),  # type: ignore[attr-defined]
        expected,
        op,
        what=f"maybe_inplace's torch operator on {case.id}",
    )
    inputs = {a.data_ptr() for a in operator_args if isinstance(a, Tensor) and a.numel()}
    for out in _flatten(through_operator):
        assert out is None or not out.numel() or out.data_ptr() not in inputs, (
            f"maybe_inplace's torch operator returned an input on {case.id}: PyTorch requires "
            "a custom operator's outputs to be new tensors"
        )
    if impl.inplace and accepted and case.num_tokens > 0:
        outputs = _flatten(result)
        for out_index, arg_index in enumerate(op.activation_indices):
            out = outputs[out_index]
            assert out is not None, f"in-place {impl!r} returned None for output {out_index}"
            assert out.data_ptr() == args[arg_index].data_ptr(), (
                f"in-place {impl!r} did not write output {out_index} into its activation "
                f"{op.activations[out_index]!r} on {case.id}"
            )


OPCHECK_TESTS = (
    "test_schema",
    "test_autograd_registration",
    "test_faketensor",
    "test_aot_dispatch_dynamic",
)


def check_opcheck(case: Case, provider: str, device: str) -> None:
    """``torch.library.opcheck`` of the op's operators while they dispatch to the provider."""
    op = case.op
    supported_impl(op, provider)  # fails the test where the provider cannot run
    with preserved_priorities():
        op.set_default([provider, "native"])
        torch.library.opcheck(op.torch_op, make_args(case, device), test_utils=OPCHECK_TESTS)
        if op.allow_inplace:
            overload = op.maybe_inplace.torch_op  # type: ignore[attr-defined]
            torch.library.opcheck(overload, make_args(case, device), test_utils=OPCHECK_TESTS)


def _fake_args(args: Sequence[Any], symbolic: bool) -> list[Any]:
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import (
        DimDynamic,
        ShapeEnv,
        StatelessSymbolicContext,
    )

    mode = FakeTensorMode(shape_env=ShapeEnv() if symbolic else None)
    fakes: list[Any] = []
    for a in args:
        if not isinstance(a, Tensor):
            fakes.append(a)
        elif symbolic:
            context: StatelessSymbolicContext[Any, Any] = StatelessSymbolicContext(
                dynamic_sizes=[DimDynamic.DYNAMIC] * a.dim()
            )
            fakes.append(mode.from_tensor(a, symbolic_context=context))
        else:
            fakes.append(mode.from_tensor(a))
    return fakes


def check_supports_args_is_a_bool(case: Case, provider: str, device: str) -> None:
    """On FakeTensors, static and symbolic, the predicate returns the same Python bool."""
    op = case.op
    impl = supported_impl(op, provider)
    args = make_args(case, device)
    real = impl.supports_args(*args)
    for symbolic in (False, True):
        answer = impl.supports_args(*_fake_args(args, symbolic))  # raises unless a bool
        assert answer is real, (
            f"supports_args of {impl!r} on {case.id}: {answer} on FakeTensors "
            f"(symbolic={symbolic}), {real} on real tensors"
        )


def check_cuda_graph(case: Case, provider: str, device: str) -> None:
    """Captured in a CUDA graph and replayed on new inputs, the op equals an eager call."""
    op = case.op
    impl = supported_impl(op, provider)
    args = make_args(case, device)
    assert impl.supports_args(*args), f"{impl!r} rejects {case.id}"
    with preserved_priorities(), enable_torch_wrap(False):
        op.set_default([provider])
        side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            op(*args)  # compiles and warms up outside the capture
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = op(*args)
        torch.manual_seed(case_seed(case) + 1)
        for i in op.activation_indices:  # new inputs in the captured buffers
            a = args[i] if i < len(args) else None
            if isinstance(a, Tensor) and a.is_floating_point():
                a.copy_(torch.randn(a.shape, device=a.device).to(a.dtype))
        graph.replay()
        torch.cuda.synchronize()
        eager = op(*args)
    assert_outputs_match(captured, eager, op, exact=True, what=f"graph replay on {case.id}")


# -- the pytest suite ---------------------------------------------------------------------------


class ProviderConformance:
    """Subclass as ``Test...`` in a kernel set's tests and set :attr:`provider`."""

    provider: ClassVar[str]
    """The provider under test."""
    platform: ClassVar[str | None] = None
    """The platform whose sessions run the suite; ``None``: every session."""
    dtypes: ClassVar[tuple[torch.dtype, ...]] = FLOAT_DTYPES
    tokens: ClassVar[tuple[int, ...]] = FULL_TOKENS
    hidden_sizes: ClassVar[tuple[int, ...]] = FULL_HIDDEN
    input_variants: ClassVar[Mapping[str, Sequence[Mapping[str, Any]]]] = INPUT_VARIANTS

    _KINDS: ClassVar[dict[str, str]] = {
        "test_matches_native": NUMERICS,
        "test_dispatch_equals_direct_call": DISPATCH,
        "test_maybe_inplace": INPLACE,
        "test_opcheck": OPCHECK,
        "test_supports_args_is_a_bool": FAKE,
        "test_cuda_graph_replay_equals_eager": GRAPH,
    }

    def expect_supported(self, case: Case) -> bool:
        """Whether the provider should take ``case``'s arguments (default: every layout but a
        non-contiguous last dimension)."""
        return case.layout != LAST_DIM_STRIDED

    def ops(self) -> list[IrOp]:
        """The ops under test: every registered op with the provider."""
        from ir_op.platforms import ensure_kernels_loaded

        ensure_kernels_loaded()
        return [op for op in IrOp.registry.values() if self.provider in op.impls]

    def skip_reason(self, device: DeviceUnderTest) -> str | None:
        if self.platform is not None and device.name != self.platform:
            return (
                f"provider {self.provider!r} runs on the {self.platform} platform; this session "
                f"tests {device.name}"
            )
        return None

    def cases(self, kind: str, device: DeviceUnderTest) -> list[Case]:
        dtypes = self.dtypes
        if conformance_grid() == "smoke":
            dtypes = (torch.bfloat16,) if torch.bfloat16 in dtypes else dtypes[:1]
        return build_cases(
            kind,
            self.ops(),
            emulated=device.emulated,
            dtypes=dtypes,
            tokens=self.tokens,
            hidden_sizes=self.hidden_sizes,
            variants=self.input_variants,
        )

    def _generate_semantic_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize the tests that take other arguments than a :class:`Case`."""
        device = device_under_test()
        reason = self.skip_reason(device)
        name = metafunc.function.__name__
        params: list[Any] = []
        if reason is None:
            ops = self.ops()
            if name == "test_rejects_bad_input":
                params = [pytest.param(b, id=b.id) for b in bad_input_cases(ops)]
            elif name == "test_gradients":
                params = [pytest.param(op.name, id=op.name) for op in ops]
            else:
                params = [
                    pytest.param((op.name, x, w), id=f"{op.name}-{_dtype_name(x)}-{_dtype_name(w)}")
                    for op in ops
                    if "weight" in op.signature.parameter_names
                    for x, w in weight_dtype_pairs()
                ]
            reason = f"no op with provider {self.provider!r} for {name}"
        if not params:
            params = [pytest.param(None, id="skipped", marks=pytest.mark.skip(reason=reason))]
        metafunc.parametrize("semantic_case", params)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "semantic_case" in metafunc.fixturenames:
            self._generate_semantic_tests(metafunc)
            return
        kind = self._KINDS.get(metafunc.function.__name__)
        if kind is None or "case" not in metafunc.fixturenames:
            return
        device = device_under_test()
        reason = self.skip_reason(device)
        if reason is None and kind == GRAPH and device.tensor_device != "cuda":
            reason = (
                f"CUDA graphs need CUDA tensors; this session puts them on {device.tensor_device}"
            )
        if reason is not None:
            metafunc.parametrize(
                "case", [pytest.param(None, id="skipped", marks=pytest.mark.skip(reason=reason))]
            )
            return
        cases = self.cases(kind, device)
        if not cases:
            reason = f"no op with provider {self.provider!r} needs a {kind} test"
            metafunc.parametrize(
                "case", [pytest.param(None, id="none", marks=pytest.mark.skip(reason=reason))]
            )
            return
        metafunc.parametrize("case", [pytest.param(c, id=c.id) for c in cases])

    def test_matches_native(self, case: Case, ir_device: DeviceUnderTest) -> None:
        check_matches_native(
            case, self.provider, ir_device.tensor_device, self.expect_supported(case)
        )

    def test_dispatch_equals_direct_call(self, case: Case, ir_device: DeviceUnderTest) -> None:
        check_dispatch(case, self.provider, ir_device.tensor_device)

    def test_maybe_inplace(self, case: Case, ir_device: DeviceUnderTest) -> None:
        check_maybe_inplace(case, self.provider, ir_device.tensor_device)

    def test_opcheck(self, case: Case, ir_device: DeviceUnderTest) -> None:
        check_opcheck(case, self.provider, ir_device.tensor_device)

    def test_supports_args_is_a_bool(self, case: Case, ir_device: DeviceUnderTest) -> None:
        check_supports_args_is_a_bool(case, self.provider, ir_device.tensor_device)

    @pytest.mark.gpu
    def test_cuda_graph_replay_equals_eager(self, case: Case, ir_device: DeviceUnderTest) -> None:
        check_cuda_graph(case, self.provider, ir_device.tensor_device)

    def test_rejects_bad_input(self, semantic_case: BadInput, ir_device: DeviceUnderTest) -> None:
        check_rejects_bad_input(semantic_case, self.provider, ir_device.tensor_device)

    def test_gradients(self, semantic_case: str, ir_device: DeviceUnderTest) -> None:
        check_gradients(IrOp.registry[semantic_case], self.provider, ir_device.tensor_device)

    def test_weight_dtypes(
        self,
        semantic_case: tuple[str, torch.dtype, torch.dtype],
        ir_device: DeviceUnderTest,
    ) -> None:
        name, x_dtype, weight_dtype = semantic_case
        check_weight_dtypes(
            IrOp.registry[name], self.provider, ir_device.tensor_device, x_dtype, weight_dtype
        )
