"""The kernels compile for H100 (sm_90) exactly as the providers launch them, on any machine.

CI has no GPU, and the emulated sessions run the kernels in Triton's interpreter, which accepts
code that Triton's compiler rejects. Triton compiles for a given target without a GPU (it ships
ptxas), so this compiles every launch the providers make for a set of inputs, with the same
specialization a launch would get, and reads the PTX: rows whose starts are 16-byte aligned must
move in vectors, which the bandwidth targets depend on. It runs wherever Triton compiles (the
cpu sessions, GPU machines); Triton's language cannot compile while it interprets.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch

triton = pytest.importorskip("triton")
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from triton.compiler.compiler import make_backend  # noqa: E402
from triton.runtime.jit import JITFunction, create_function_from_signature  # noqa: E402

from ir_kernels_cuda import activation, composite, launch, norm, quant, rotary  # noqa: E402
from ir_kernels_cuda.activation import ACTIVATION  # noqa: E402
from ir_triton import BoundLauncher, KernelLauncher, RowConfig, interpreting  # noqa: E402

H100 = GPUTarget("cuda", 90, 32)
BACKEND = make_backend(H100)
LAUNCHERS: dict[Any, tuple[str, ...]] = {
    norm.NORM: ("rows_launcher", "fused_rows_launcher", "looped_launcher"),
    activation.ACTIVATION: ("sparse_rows_launcher", "sparse_looped_launcher", "gated_launcher"),
    composite.SILU_AND_MUL_QUANT: ("launcher",),
    quant.STATIC_QUANT: ("launcher",),
    quant.DYNAMIC_QUANT: ("quant_launcher", "abs_max_launcher", "rows_launcher", "looped_launcher"),
    composite.NORM_QUANT: ("rows_launcher", "looped_launcher"),
    rotary.ROTARY: ("launcher",),  # the shared rotary kernel's launcher, read at each call
}


@pytest.fixture(autouse=True)
def _compiling_triton() -> None:
    if interpreting():
        pytest.skip(
            "Triton interprets in this session (emulated platform), and its language cannot "
            "compile then; the cpu session and GPU sessions compile"
        )


class Recorder:
    """Stands in for a KernelLauncher: records launches instead of making them."""

    def __init__(self, launcher: KernelLauncher) -> None:
        self.kernel = launcher.kernel
        self.real = launcher
        self.calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []

    def launch(self, grid: Any, *args: Any, **options: Any) -> None:
        self.calls.append((grid, args, options))

    traced = launch

    def bind(self, *constexprs: Any, **options: Any) -> RecordingBound:
        return RecordingBound(self, self.real.bind(*constexprs, **options))


class RecordingBound:
    """Stands in for a BoundLauncher: records the launch with every argument in place."""

    def __init__(self, recorder: Recorder, bound: BoundLauncher) -> None:
        self.recorder = recorder
        self.bound = bound

    def launch(self, grid: Any, *args: Any) -> None:
        self.recorder.launch(grid, *self.bound._all_args(args), **self.bound.options)

    traced = launch


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Recorder]:
    recorders: list[Recorder] = []
    for module, names in LAUNCHERS.items():
        for plans in [n for n in vars(module) if n.endswith("plans")]:
            monkeypatch.setattr(module, plans, {})  # plans hold the real launchers' bindings
        for name in names:
            recorder = Recorder(getattr(module, name))
            monkeypatch.setattr(module, name, recorder)
            recorders.append(recorder)
    return recorders


def compile_for_h100(kernel: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
    """Compile as ``JITFunction.run`` would for these arguments, for sm_90."""
    jit = JITFunction(getattr(kernel, "fn", kernel))  # the interpreter wraps the same function
    binder = create_function_from_signature(jit.signature, jit.params, BACKEND)
    bound, specialization, launch_options = binder(*args, **options)
    parsed, signature, constexprs, attrs = jit._pack_args(
        BACKEND, launch_options, bound, specialization, launch_options
    )
    source = ASTSource(jit, signature, constexprs, attrs)
    return triton.compile(source, target=H100, options=parsed.__dict__)


def compiled_ptx(recorders: list[Recorder]) -> list[str]:
    calls = [(r.kernel, args, options) for r in recorders for _, args, options in r.calls]
    assert calls, "the provider launched nothing"
    return [compile_for_h100(k, args, options).asm["ptx"] for k, args, options in calls]


def global_accesses(ptx: str) -> tuple[int, int]:
    """(vector, scalar) global loads and stores in the PTX."""
    accesses = re.findall(r"(?:ld|st)\.global[.:\w]*", ptx)
    vector = sum(".v2" in a or ".v4" in a for a in accesses)
    return vector, len(accesses) - vector


def bf16(*shape: int) -> torch.Tensor:
    return torch.randn(*shape).to(torch.bfloat16)


def scale() -> torch.Tensor:
    return torch.tensor([0.02])


def rotary_call(hidden: int, dtype: torch.dtype, neox: bool, in_place: bool) -> None:
    """Heads of 128 where the width allows, else one head of the whole width."""
    head_size = 128 if hidden % 128 == 0 else hidden
    query, key = bf16(4, hidden).to(dtype), bf16(4, hidden).to(dtype)
    cache = bf16(64, head_size - head_size % 2).to(dtype)
    provider = rotary.rotary_embedding_cuda_inplace if in_place else rotary.rotary_embedding_cuda
    provider(torch.arange(4), query, key, head_size, cache, neox)


CALLS: dict[str, Callable[[int, torch.dtype], None]] = {
    "rms_norm": lambda h, dt: norm.rms_norm_cuda(bf16(4, h).to(dt), bf16(h).to(dt), 1e-6),
    "rms_norm_no_weight": lambda h, dt: norm.rms_norm_cuda(bf16(4, h).to(dt), None, 1e-6),
    "rms_norm_variance_size": lambda h, dt: norm.rms_norm_cuda(
        bf16(4, h).to(dt), bf16(h).to(dt), 1e-6, h // 2
    ),
    "fused_add_rms_norm": lambda h, dt: norm.fused_add_rms_norm_cuda(
        bf16(4, h).to(dt), bf16(4, h).to(dt), bf16(h).to(dt), 1e-6
    ),
    "fused_add_rms_norm_inplace": lambda h, dt: norm.fused_add_rms_norm_cuda_inplace(
        bf16(4, h).to(dt), bf16(4, h).to(dt), bf16(h).to(dt), 1e-6
    ),
    "gelu_and_mul_sparse_tanh": lambda h, dt: ACTIVATION.gelu_and_mul_sparse(
        bf16(4, 2 * h).to(dt), 1.6, "tanh"
    ),
    "gelu_and_mul_sparse_erf": lambda h, dt: ACTIVATION.gelu_and_mul_sparse(
        bf16(4, 2 * h).to(dt), 1.6, "none"
    ),
    "silu_and_mul": lambda h, dt: ACTIVATION.silu_and_mul(bf16(4, 2 * h).to(dt)),
    "gelu_and_mul_erf": lambda h, dt: ACTIVATION.gelu_and_mul(bf16(4, 2 * h).to(dt), "none"),
    "gelu_and_mul_tanh": lambda h, dt: ACTIVATION.gelu_and_mul(bf16(4, 2 * h).to(dt), "tanh"),
    "silu_and_mul_static_fp8_quant": lambda h, dt: composite.SILU_AND_MUL_QUANT.provider(
        bf16(4, 2 * h).to(dt), scale()
    ),
    "static_scaled_fp8_quant": lambda h, dt: quant.STATIC_QUANT.provider(
        bf16(4, h).to(dt), scale()
    ),
    "dynamic_scaled_fp8_quant": lambda h, dt: quant.DYNAMIC_QUANT.provider(bf16(4, h).to(dt)),
    "dynamic_scaled_fp8_quant_per_token": lambda h, dt: quant.DYNAMIC_QUANT.provider(
        bf16(4, h).to(dt), True, scale()
    ),
    "rms_norm_static_fp8_quant": lambda h, dt: composite.NORM_QUANT.rms_norm_static_fp8_quant(
        bf16(4, h).to(dt), bf16(h).to(dt), 1e-6, scale()
    ),
    "fused_add_rms_norm_static_fp8_quant": lambda h, dt: (
        composite.NORM_QUANT.fused_add_rms_norm_static_fp8_quant(
            bf16(4, h).to(dt), bf16(4, h).to(dt), bf16(h).to(dt), 1e-6, scale()
        )
    ),
    "rotary_embedding_neox": lambda h, dt: rotary_call(h, dt, True, False),
    "rotary_embedding_gptj": lambda h, dt: rotary_call(h, dt, False, False),
    "rotary_embedding_neox_inplace": lambda h, dt: rotary_call(h, dt, True, True),
    "rotary_embedding_gptj_inplace": lambda h, dt: rotary_call(h, dt, False, True),
}


SCALAR_ACCESSES = {
    "silu_and_mul_static_fp8_quant": 1,  # the scale
    "static_scaled_fp8_quant": 1,
    "dynamic_scaled_fp8_quant": 2,  # the amax, the scale stored
    "dynamic_scaled_fp8_quant_per_token": 2,  # scale_ub, the row's scale stored
    "rms_norm_static_fp8_quant": 1,
    "fused_add_rms_norm_static_fp8_quant": 1,
    "rotary_embedding_neox": 1,  # the token's position
    "rotary_embedding_gptj": 1,
    "rotary_embedding_neox_inplace": 1,
    "rotary_embedding_gptj_inplace": 1,
}
"""Scalar global accesses a call's kernels may make: one-element parameters, not rows."""


def assert_rows_move_in_vectors(call: str, recorded: list[Recorder]) -> None:
    for ptx in compiled_ptx(recorded):
        vector, scalar = global_accesses(ptx)
        assert vector > 0 and scalar <= SCALAR_ACCESSES.get(call, 0), (call, vector, scalar)


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("hidden", [4096, 16384])
def test_aligned_rows_move_in_vectors(recorded: list[Recorder], call: str, hidden: int) -> None:
    """One block (4096) and looped (16384) kernels, with every option the providers use."""
    CALLS[call](hidden, torch.bfloat16)
    assert_rows_move_in_vectors(call, recorded)


@pytest.mark.parametrize(
    "call",
    [
        "fused_add_rms_norm",
        "gelu_and_mul_sparse_tanh",
        "silu_and_mul_static_fp8_quant",
        "rms_norm_static_fp8_quant",
        "dynamic_scaled_fp8_quant_per_token",
        "rotary_embedding_neox",
    ],
)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("hidden", [5120, 8192])
def test_other_dtypes_and_widths_move_in_vectors(
    recorded: list[Recorder], call: str, dtype: torch.dtype, hidden: int
) -> None:
    CALLS[call](hidden, dtype)
    assert_rows_move_in_vectors(call, recorded)


@pytest.mark.parametrize("hidden", [8, 769, 12289])
def test_odd_and_small_rows_compile(recorded: list[Recorder], hidden: int) -> None:
    for call in CALLS.values():
        call(hidden, torch.bfloat16)
    assert all(".entry" in ptx for ptx in compiled_ptx(recorded))


PDL_CALLS = {name: call for name, call in CALLS.items() if not name.startswith("rotary")}
"""Every call but rotary's: its kernel is the vendor-neutral one of ``ir_triton.kernels.rotary``,
which has no NVIDIA-only instructions (and so no PDL)."""


def test_pdl_launches_wait_for_the_previous_kernel_first(
    recorded: list[Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With PDL on, every kernel is compiled with the attribute and starts with
    griddepcontrol.wait (before any memory access), then lets the next kernel launch; off, the
    instructions are not there at all."""
    monkeypatch.setattr(launch.PDL, "enabled", True)
    for call in PDL_CALLS.values():
        call(4096, torch.bfloat16)
    call_count = sum(len(r.calls) for r in recorded)
    assert all(options["launch_pdl"] is True for r in recorded for _, _, options in r.calls)
    for ptx in compiled_ptx(recorded):
        body = ptx[ptx.index(".entry") :]
        wait = body.index("griddepcontrol.wait")
        assert "griddepcontrol.launch_dependents" in body
        first_access = re.search(r"(?:ld|st)\.global", body)
        assert first_access is not None and wait < first_access.start()
    for r in recorded:
        r.calls.clear()
    monkeypatch.setattr(launch.PDL, "enabled", False)
    for call in PDL_CALLS.values():
        call(4096, torch.bfloat16)
    assert sum(len(r.calls) for r in recorded) == call_count
    assert not any(options.get("launch_pdl") for r in recorded for _, _, options in r.calls)
    assert not any("griddepcontrol" in ptx for ptx in compiled_ptx(recorded))


def test_launch_plans_follow_the_row_table(
    recorded: list[Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plans are made once per width and options, and again when the launch is replaced
    (benchmarks/tune_rows.py swaps its table); decode-sized launches take the decode choices."""
    norm.rms_norm_cuda(bf16(4, 8192), bf16(8192), 1e-6)
    norm.rms_norm_cuda(bf16(128, 8192), bf16(8192), 1e-6)
    rows = recorded[0]
    assert [(grid, options["num_warps"]) for grid, _, options in rows.calls] == [
        ((4,), norm.NORM.launch.table.config(8192, 4).num_warps),
        ((128,), norm.NORM.launch.table.config(8192).num_warps),
    ]
    assert (
        norm.NORM.launch.table.config(8192, 4).num_warps
        != norm.NORM.launch.table.config(8192).num_warps
    )

    class Fixed:
        decode_rows = 0

        def config(self, n_cols: int, n_rows: int | None = None) -> RowConfig:
            return RowConfig(8192, 2, 4, looped=False)

    monkeypatch.setattr(norm.NORM, "launch", dataclasses.replace(norm.NORM.launch, table=Fixed()))
    norm.rms_norm_cuda(bf16(128, 8192), bf16(8192), 1e-6)
    grid, args, options = rows.calls[-1]
    assert grid == (64,) and options["num_warps"] == 4 and args[9] == 2  # ROWS constexpr
