"""The rocm kernels compile for MI300 (gfx942) and MI350 (gfx950) as the providers launch them.

CI has no AMD GPU, and the emulated sessions run the kernels in Triton's interpreter, which
accepts code that Triton's compiler rejects. Triton's AMD backend compiles for a named target
without a GPU (the wheel ships it, with its linker), so this compiles every launch the providers
make for a set of inputs, with the specialization a launch would get and the table's wavefront
counts, and reads the AMDGCN assembly:

- every kernel compiles for both targets, with no register spills and room for at least six
  waves per SIMD without a ``waves_per_eu`` hint (why the table gives none);
- rows whose starts are 16-byte aligned move in 16-byte vectors (``dwordx4``);
- the fp8 conversion is the hardware instruction for each generation's format, and the other
  generation's format is emulated in software (why the providers leave it to native).

Each target compiles in a process of its own (this file run as a script, once per target) with
an empty Triton cache: Triton 3.6's AMD backend keeps state across compiles for different
targets, so a process that compiled for gfx942 emits gfx950 code without gfx950's fp8
instructions (the other order fails to compile), and the on-disk cache would serve such binaries
to later processes. A real GPU compiles for one target only. It runs wherever Triton compiles (the
cpu sessions, GPU machines); Triton's language cannot compile while it interprets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pytest
import torch

triton = pytest.importorskip("triton")
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from triton.compiler.compiler import make_backend  # noqa: E402
from triton.runtime.jit import JITFunction, create_function_from_signature  # noqa: E402

from ir_kernels_rocm import activation, composite, norm, quant, rotary  # noqa: E402
from ir_triton import BoundLauncher, KernelLauncher, interpreting  # noqa: E402

ARCHS = ("gfx942", "gfx950")
NATIVE_FP8 = {"gfx942": torch.float8_e4m3fnuz, "gfx950": torch.float8_e4m3fn}
OTHER_FP8 = {"gfx942": torch.float8_e4m3fn, "gfx950": torch.float8_e4m3fnuz}
LAUNCHERS: dict[Any, tuple[str, ...]] = {
    norm.NORM: ("rows_launcher", "fused_rows_launcher", "looped_launcher"),
    activation.ACTIVATION: ("gated_launcher", "sparse_rows_launcher", "sparse_looped_launcher"),
    rotary.ROTARY: ("launcher",),
    quant.STATIC_QUANT: ("launcher",),  # the shared static quant kernel's launcher
    quant.DYNAMIC_QUANT: ("abs_max_launcher", "quant_launcher", "rows_launcher", "looped_launcher"),
    composite.NORM_QUANT: ("rows_launcher", "looped_launcher"),
    composite.SILU_AND_MUL_QUANT: ("launcher",),
}
VGPRS_PER_LANE = 512
"""CDNA3/CDNA4: a SIMD's vector registers per lane, shared by the waves it holds."""
MIN_WAVES_PER_SIMD = 6
WIDTHS = (8, 769, 4096, 16384, 20480)
"""Packed short rows, odd rows, one block (4096, 16384) and looped (20480)."""
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
CASES = (
    *((width, "bf16") for width in WIDTHS),
    (769, "fp16"),
    (16384, "fp32"),
    (20480, "fp32"),  # the most registers: float32 rows in the looped kernels
)
"""(width, dtype) pairs compiled: every width in bf16, the other dtypes where they matter."""


def bf16(*shape: int) -> torch.Tensor:
    return torch.randn(*shape).to(torch.bfloat16)


def rotate(width: int, dtype: torch.dtype, is_neox_style: bool, in_place: bool) -> object:
    """Rotary embedding of heads of 128 (``width // 128`` query heads, at most 32; 8 key heads),
    rotating all of each head, with a float32 cache."""
    heads = max(1, min(32, width // 128))
    positions = torch.arange(4)
    query, key = bf16(4, heads * 128).to(dtype), bf16(4, 8 * 128).to(dtype)
    provider = rotary.rotary_embedding_rocm_inplace if in_place else rotary.rotary_embedding_rocm
    return provider(positions, query, key, 128, torch.randn(64, 128), is_neox_style)


CALLS: dict[str, Callable[[int, torch.dtype], object]] = {
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
    "rotary_neox": lambda h, dt: rotate(h, dt, is_neox_style=True, in_place=False),
    "rotary_gptj_inplace": lambda h, dt: rotate(h, dt, is_neox_style=False, in_place=True),
}


def quantize_call(fp8_dtype: torch.dtype) -> Callable[[int, torch.dtype], object]:
    def call(h: int, dt: torch.dtype) -> object:
        x = bf16(4, h).to(dt)
        return quant.static_scaled_fp8_quant_rocm(x, torch.tensor([0.1]), fp8_dtype)

    return call


def fp8_calls(fp8: torch.dtype) -> dict[str, Callable[[int, torch.dtype], object]]:
    """The launches that write ``fp8`` (the target's own format), by call name."""
    scale = torch.tensor([0.1])
    return {
        "quant": quantize_call(fp8),
        "dynamic_quant_per_tensor": lambda h, dt: quant.dynamic_scaled_fp8_quant_rocm(
            bf16(4, h).to(dt), False, None, fp8
        ),
        "dynamic_quant_per_token": lambda h, dt: quant.dynamic_scaled_fp8_quant_rocm(
            bf16(4, h).to(dt), True, None, fp8
        ),
        "dynamic_quant_per_token_scale_ub": lambda h, dt: quant.dynamic_scaled_fp8_quant_rocm(
            bf16(4, h).to(dt), True, torch.tensor([2.0]), fp8
        ),
        "rms_norm_quant": lambda h, dt: composite.rms_norm_static_fp8_quant_rocm(
            bf16(4, h).to(dt), bf16(h).to(dt), 1e-6, scale, fp8
        ),
        "fused_add_rms_norm_quant": lambda h, dt: (
            composite.fused_add_rms_norm_static_fp8_quant_rocm(
                bf16(4, h).to(dt), bf16(4, h).to(dt), None, 1e-6, scale, fp8
            )
        ),
        "silu_and_mul_quant": lambda h, dt: composite.silu_and_mul_static_fp8_quant_rocm(
            bf16(4, 2 * h).to(dt), scale, fp8
        ),
    }


SCALAR_LOADS = {
    "static_fp8_quant_kernel": 1,  # the scale
    "quant_from_amax_kernel": 1,  # the amax
    "rms_norm_quant_rows_kernel": 1,  # the scale
    "rms_norm_quant_looped_kernel": 1,
    "silu_and_mul_quant_kernel": 1,
}
"""One-element loads each kernel makes besides its rows (the rotary kernel's position is a
scalar load, not a vector one); the per-token kernels load ``scale_ub`` when given."""


def scalar_loads(c: Compiled) -> int:
    return SCALAR_LOADS.get(c.kernel, 0) + (c.call == "dynamic_quant_per_token_scale_ub")


# -- the compiling side (this file as a script, one target per process) -------------------------


@dataclass(frozen=True)
class Compiled:
    """What one compiled launch looks like."""

    call: str
    width: int
    dtype: str
    kernel: str
    vgprs: int
    spills: int
    wide_loads: int
    narrow_loads: int
    fp8_conversions: list[str]
    vector_instructions: int


class Recorder:
    """Stands in for a KernelLauncher: records launches instead of making them."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def launch(self, grid: Any, *args: Any, **options: Any) -> None:
        self.calls.append((args, options))

    traced = launch

    def bind(self, *constexprs: Any, **options: Any) -> RecordingBound:
        return RecordingBound(self, KernelLauncher(self.kernel).bind(*constexprs, **options))


class RecordingBound:
    """Stands in for a BoundLauncher: records the launch with every argument in place."""

    def __init__(self, recorder: Recorder, bound: BoundLauncher) -> None:
        self.recorder = recorder
        self.bound = bound

    def launch(self, grid: Any, *args: Any) -> None:
        self.recorder.launch(grid, *self.bound._all_args(args), **self.bound.options)

    traced = launch


def compile_for(
    target: GPUTarget, kernel: Any, args: tuple[Any, ...], options: dict[str, Any]
) -> str:
    """The AMDGCN of ``kernel`` compiled as ``JITFunction.run`` would for these arguments."""
    backend = make_backend(target)
    jit = JITFunction(getattr(kernel, "fn", kernel))
    binder = create_function_from_signature(jit.signature, jit.params, backend)
    bound, specialization, launch_options = binder(*args, **options)
    parsed, signature, constexprs, attrs = jit._pack_args(
        backend, launch_options, bound, specialization, launch_options
    )
    source = ASTSource(jit, signature, constexprs, attrs)
    asm: str = triton.compile(source, target=target, options=parsed.__dict__).asm["amdgcn"]
    return asm


def _describe(call: str, width: int, dtype: str, kernel: Any, asm: str) -> Compiled:
    def metadata(name: str) -> int:
        return int(re.search(rf"\.{name}:\s+(\d+)", asm).group(1))  # type: ignore[union-attr]

    loads = re.findall(r"\b(?:global|buffer)_load_(\w+)", asm)
    wide = sum(width == "dwordx4" for width in loads)
    return Compiled(
        call=call,
        width=width,
        dtype=dtype,
        kernel=getattr(kernel, "__name__", None) or kernel.fn.__name__,
        vgprs=metadata("vgpr_count"),
        spills=metadata("vgpr_spill_count"),
        wide_loads=wide,
        narrow_loads=len(loads) - wide,
        fp8_conversions=sorted(set(re.findall(r"\bv_cvt\w*fp8\w*", asm))),
        vector_instructions=len(re.findall(r"^\s+v_", asm, re.MULTILINE)),
    )


def compile_everything(arch: str) -> list[Compiled]:
    """Every launch of every provider call, compiled for ``arch`` (launchers patched out)."""
    recorders: list[Recorder] = []
    for owner, names in LAUNCHERS.items():
        for name in names:
            recorder = Recorder(getattr(owner, name).kernel)
            setattr(owner, name, recorder)
            recorders.append(recorder)
    calls = {
        **CALLS,
        **fp8_calls(NATIVE_FP8[arch]),
        "quant_other_format": quantize_call(OTHER_FP8[arch]),
    }
    target = GPUTarget("hip", arch, 64)
    compiled: list[Compiled] = []
    for width in WIDTHS:
        for dtype_name, dtype in DTYPES.items():
            for call_name, call in calls.items():
                for recorder in recorders:
                    recorder.calls.clear()
                call(width, dtype)
                for recorder in recorders:
                    for args, options in recorder.calls:
                        asm = compile_for(target, recorder.kernel, args, options)
                        compiled.append(
                            _describe(call_name, width, dtype_name, recorder.kernel, asm)
                        )
    return compiled


if __name__ == "__main__":
    print(json.dumps([asdict(c) for c in compile_everything(sys.argv[1])]))
    sys.exit(0)


# -- the tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=ARCHS)
def compiled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[Compiled]]:
    if interpreting():
        pytest.skip(
            "Triton interprets in this session (emulated platform), and its language cannot "
            "compile then; the cpu session and GPU sessions compile"
        )
    arch: str = request.param
    result = subprocess.run(
        [sys.executable, __file__, arch],
        capture_output=True,
        text=True,
        check=False,
        # A cache of its own: binaries that another process compiled after a compile for another
        # target are wrong (see above), and Triton's cache key does not tell them apart.
        env={
            **os.environ,
            "IR_OP_PLATFORM": "rocm",
            "TRITON_CACHE_DIR": str(tmp_path_factory.mktemp(f"triton-cache-{arch}")),
        },
    )
    assert result.returncode == 0, result.stderr[-4000:]
    found = [Compiled(**c) for c in json.loads(result.stdout.strip().splitlines()[-1])]
    assert found, "the providers launched nothing"
    return arch, found


def test_every_call_compiles(compiled: tuple[str, list[Compiled]]) -> None:
    _, found = compiled
    expected = {*CALLS, *fp8_calls(NATIVE_FP8["gfx942"]), "quant_other_format"}
    for width, dtype in CASES:
        calls = {c.call for c in found if c.width == width and c.dtype == dtype}
        assert calls == expected, (width, dtype, expected - calls)


def test_no_spills_and_enough_waves(compiled: tuple[str, list[Compiled]]) -> None:
    """Every launch leaves room for six waves per SIMD without spilling, in every dtype."""
    _, found = compiled
    for c in found:
        assert c.spills == 0, c
        assert VGPRS_PER_LANE // c.vgprs >= MIN_WAVES_PER_SIMD, c


def test_aligned_rows_move_in_vectors(compiled: tuple[str, list[Compiled]]) -> None:
    """16-bit rows of 4096 and more columns load in 16-byte vectors only, besides each kernel's
    one-element loads (:data:`SCALAR_LOADS`)."""
    _, found = compiled
    aligned = [c for c in found if c.width >= 4096 and c.dtype != "fp32"]
    assert aligned
    for c in aligned:
        assert c.wide_loads > 0 and c.narrow_loads == scalar_loads(c), c


def test_fp8_conversion_is_the_hardware_instruction(
    compiled: tuple[str, list[Compiled]],
) -> None:
    """gfx942 converts to e4m3fnuz and gfx950 to e4m3fn with one instruction per pair of
    values, on every row width, in every kernel that writes fp8 (the amax pass writes none)."""
    arch, found = compiled
    instruction = {"gfx942": "v_cvt_pk_fp8_f32", "gfx950": "v_cvt_scalef32_pk_fp8_f32"}[arch]
    writers = set(fp8_calls(NATIVE_FP8[arch]))
    native = [c for c in found if c.call in writers and c.kernel != "abs_max_kernel"]
    assert {c.call for c in native} == writers
    for c in native:
        assert c.fp8_conversions == [instruction], c


def test_the_other_generations_format_is_emulated(compiled: tuple[str, list[Compiled]]) -> None:
    """Why each generation takes one format: Triton emulates the other in software, at more
    than twice the vector instructions, so native is left to do it."""
    _, found = compiled
    by_key = {(c.width, c.dtype): c for c in found if c.call == "quant"}
    for c in (c for c in found if c.call == "quant_other_format"):
        native = by_key[c.width, c.dtype]
        assert c.fp8_conversions == [], c
        assert c.vector_instructions > 2 * native.vector_instructions, (c, native)
