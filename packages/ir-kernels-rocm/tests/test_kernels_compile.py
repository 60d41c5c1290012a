"""The rocm kernels compile for MI300 (gfx942) and MI350 (gfx950) as the providers launch them.

CI has no AMD GPU, and the emulated sessions run the kernels in Triton's interpreter, which
accepts code that Triton's compiler rejects. Triton's AMD backend compiles for a named target
without a GPU (the wheel ships it, with its linker), so this compiles every launch the providers
make for a set of inputs, with the specialization a launch would get and the table's wavefront
counts, and reads the AMDGCN assembly:

- every kernel compiles for both targets, with no register spills and room for at least six
  waves per SIMD without a ``waves_per_eu`` hint (why the table gives none);
- rows whose starts are 16-byte aligned move in 16-byte vectors (``dwordx4``);
- the fp8 conversion is the hardware instruction on each generation's format.

It runs wherever Triton compiles (the cpu sessions, GPU machines); Triton's language cannot
compile while it interprets.
"""

from __future__ import annotations

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

from ir_kernels_rocm import activation, norm, quant  # noqa: E402
from ir_op.triton import interpreting  # noqa: E402

MI300 = GPUTarget("hip", "gfx942", 64)
MI350 = GPUTarget("hip", "gfx950", 64)
TARGETS = {"gfx942": MI300, "gfx950": MI350}
LAUNCHERS = {
    norm: ("ROWS_LAUNCHER", "FUSED_ROWS_LAUNCHER", "LOOPED_LAUNCHER"),
    activation: ("GATED_LAUNCHER", "SPARSE_ROWS_LAUNCHER", "SPARSE_LOOPED_LAUNCHER"),
    quant: ("QUANT_LAUNCHER",),
}
VGPRS_PER_LANE = 512
"""CDNA3/CDNA4: a SIMD's vector registers per lane, shared by the waves it holds."""
MIN_WAVES_PER_SIMD = 6


@pytest.fixture(autouse=True)
def _compiling_triton() -> None:
    if interpreting():
        pytest.skip(
            "Triton interprets in this session (emulated platform), and its language cannot "
            "compile then; the cpu session and GPU sessions compile"
        )


class Recorder:
    """Stands in for a KernelLauncher: records launches instead of making them."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []

    def launch(self, grid: Any, *args: Any, **options: Any) -> None:
        self.calls.append((grid, args, options))

    traced = launch


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Recorder]:
    recorders: list[Recorder] = []
    for module, names in LAUNCHERS.items():
        for name in names:
            recorder = Recorder(getattr(module, name).kernel)
            monkeypatch.setattr(module, name, recorder)
            recorders.append(recorder)
    return recorders


def compile_for(
    target: GPUTarget, kernel: Any, args: tuple[Any, ...], options: dict[str, Any]
) -> Any:
    """Compile as ``JITFunction.run`` would for these arguments, for ``target``."""
    backend = make_backend(target)
    jit = JITFunction(getattr(kernel, "fn", kernel))  # the interpreter wraps the same function
    binder = create_function_from_signature(jit.signature, jit.params, backend)
    bound, specialization, launch_options = binder(*args, **options)
    parsed, signature, constexprs, attrs = jit._pack_args(
        backend, launch_options, bound, specialization, launch_options
    )
    source = ASTSource(jit, signature, constexprs, attrs)
    return triton.compile(source, target=target, options=parsed.__dict__)


def compiled_asm(recorders: list[Recorder], arch: str) -> list[str]:
    calls = [(r.kernel, args, options) for r in recorders for _, args, options in r.calls]
    assert calls, "the provider launched nothing"
    return [compile_for(TARGETS[arch], k, a, o).asm["amdgcn"] for k, a, o in calls]


def registers(asm: str) -> tuple[int, int]:
    """(VGPRs per lane, spilled VGPRs) of the kernel."""
    vgprs = int(re.search(r"\.vgpr_count:\s+(\d+)", asm).group(1))  # type: ignore[union-attr]
    spills = int(re.search(r"\.vgpr_spill_count:\s+(\d+)", asm).group(1))  # type: ignore[union-attr]
    return vgprs, spills


def vector_accesses(asm: str, kind: str) -> tuple[int, int]:
    """(16-byte, narrower) global or buffer ``kind`` ("load" or "store") instructions."""
    found = re.findall(rf"\b(?:global|buffer)_{kind}_(\w+)", asm)
    wide = sum(width == "dwordx4" for width in found)
    return wide, len(found) - wide


def bf16(*shape: int) -> torch.Tensor:
    return torch.randn(*shape).to(torch.bfloat16)


CALLS: dict[str, Callable[[int, torch.dtype], None]] = {
    "rms_norm": lambda h, dt: norm.rms_norm_rocm(bf16(4, h).to(dt), bf16(h).to(dt), 1e-6),
    "rms_norm_no_weight": lambda h, dt: norm.rms_norm_rocm(bf16(4, h).to(dt), None, 1e-6),
    "rms_norm_variance_size": lambda h, dt: norm.rms_norm_rocm(
        bf16(4, h).to(dt), bf16(h).to(dt), 1e-6, h // 2
    ),
    "fused_add_rms_norm": lambda h, dt: norm.fused_add_rms_norm_rocm(
        bf16(4, h).to(dt), bf16(4, h).to(dt), bf16(h).to(dt), 1e-6
    ),
    "fused_add_rms_norm_inplace": lambda h, dt: norm.fused_add_rms_norm_rocm_inplace(
        bf16(4, h).to(dt), bf16(4, h).to(dt), bf16(h).to(dt), 1e-6
    ),
    "silu_and_mul": lambda h, dt: activation.silu_and_mul_rocm(bf16(4, 2 * h).to(dt)),
    "gelu_and_mul_erf": lambda h, dt: activation.gelu_and_mul_rocm(bf16(4, 2 * h).to(dt)),
    "gelu_and_mul_tanh": lambda h, dt: activation.gelu_and_mul_rocm(bf16(4, 2 * h).to(dt), "tanh"),
    "gelu_and_mul_sparse_tanh": lambda h, dt: activation.gelu_and_mul_sparse_rocm(
        bf16(4, 2 * h).to(dt), 1.6, "tanh"
    ),
    "gelu_and_mul_sparse_erf": lambda h, dt: activation.gelu_and_mul_sparse_rocm(
        bf16(4, 2 * h).to(dt), 1.6, "none"
    ),
}
QUANT_CALLS: dict[str, torch.dtype] = {
    "gfx942": torch.float8_e4m3fnuz,
    "gfx950": torch.float8_e4m3fn,
}


def quantize(h: int, dt: torch.dtype, fp8_dtype: torch.dtype) -> None:
    quant.static_scaled_fp8_quant_rocm(bf16(4, h).to(dt), torch.tensor([0.1]), fp8_dtype)


@pytest.mark.parametrize("arch", list(TARGETS))
@pytest.mark.parametrize("hidden", [4096, 16384, 20480])
def test_aligned_rows_move_in_vectors(recorded: list[Recorder], arch: str, hidden: int) -> None:
    """One block (4096, 16384) and looped (20480) kernels, with every option the providers use."""
    for call in CALLS.values():
        call(hidden, torch.bfloat16)
    quantize(hidden, torch.bfloat16, QUANT_CALLS[arch])
    calls = [(r.kernel, args, options) for r in recorded for _, args, options in r.calls]
    for kernel, args, options in calls:
        asm = compile_for(TARGETS[arch], kernel, args, options).asm["amdgcn"]
        wide, narrow = vector_accesses(asm, "load")
        scalars = 1 if kernel is quant.QUANT_LAUNCHER.kernel else 0  # the one-element scale
        assert wide > 0 and narrow == scalars, (kernel, wide, narrow)


@pytest.mark.parametrize("arch", list(TARGETS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("hidden", [8, 769, 4096, 16384, 20480])
def test_no_spills_and_enough_waves(
    recorded: list[Recorder], arch: str, dtype: torch.dtype, hidden: int
) -> None:
    """Every launch leaves room for six waves per SIMD without spilling, in every dtype."""
    for call in CALLS.values():
        call(hidden, dtype)
    quantize(hidden, dtype, QUANT_CALLS[arch])
    for asm in compiled_asm(recorded, arch):
        vgprs, spills = registers(asm)
        assert spills == 0, asm[-2000:]
        assert VGPRS_PER_LANE // vgprs >= MIN_WAVES_PER_SIMD, vgprs


@pytest.mark.parametrize("arch", list(TARGETS))
@pytest.mark.parametrize("hidden", [4096, 16384, 20480])
def test_fp8_conversion_is_the_hardware_instruction(
    recorded: list[Recorder], arch: str, hidden: int
) -> None:
    """gfx942 converts to e4m3fnuz and gfx950 to e4m3fn with ``v_cvt_*pk_fp8_f32``.

    For rows of 16-byte aligned widths, as models have. (Rows of odd width convert one value
    per lane, which Triton 3.6 does in software on gfx950; those compile, as checked above.)
    """
    quantize(hidden, torch.bfloat16, QUANT_CALLS[arch])
    for asm in compiled_asm(recorded, arch):
        conversions = sorted(set(re.findall(r"\bv_cvt\w*fp8\w*", asm)))
        assert re.search(r"\bv_cvt_(?:scalef32_)?pk_fp8_f32\b", asm), conversions


@pytest.mark.parametrize(
    ("arch", "fp8_dtype"),
    [("gfx942", torch.float8_e4m3fn), ("gfx950", torch.float8_e4m3fnuz)],
)
def test_the_other_generations_format_is_not_native(
    recorded: list[Recorder], arch: str, fp8_dtype: torch.dtype
) -> None:
    """Why each generation takes one format: the other fails to build (gfx942) or converts in
    software at about three times the instructions (gfx950), so native is left to do it."""
    quantize(4096, torch.bfloat16, fp8_dtype)
    (_, args, options), *_ = recorded[-1].calls
    try:
        asm = compile_for(TARGETS[arch], recorded[-1].kernel, args, options).asm["amdgcn"]
    except RuntimeError:  # Triton 3.6 fails to link e4m3fn conversions for gfx942
        return
    assert not re.search(r"\bv_cvt\w*fp8", asm)
