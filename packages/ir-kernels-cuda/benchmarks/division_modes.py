"""Exact division against reciprocal multiply in the cuda fp8 kernels: numerics and speed.

    python packages/ir-kernels-cuda/benchmarks/division_modes.py --out results.json

The quantizing kernels divide by a scale (``RowLaunch.exact_division``): ``div_rn(x, scale)``,
correctly rounded as torch divides (the default), or ``x * div_rn(1, scale)``, one reciprocal
per program (within 1.5 float32 ulps of the quotient). This runs the cuda providers of every op
that divides by a scale in both modes, on the shapes 1x4096, 64x4096, 4096x4096 and 16384x4096
(bf16 for the timings; fp16, bf16 and fp32 for the numerics) and prints, per op, shape and mode:

- numerics against the op's native function: the share of fp8 outputs whose bits differ, and
  the largest distance in fp8 steps (adjacent fp8 values are one step apart; NaN equals NaN);
  the same for the reciprocal mode's outputs against the exact mode's (what the mode alone
  changes), and for the static quantization the float32 ulps between the two quotients;
- on a CUDA GPU, the kernel time in microseconds: a CUDA graph of one call per input set,
  the input sets rotating through more than 120 MiB (so each call reads from HBM, not L2), timed
  with CUDA events, median of ``--repeats`` replays, per call.

Without a CUDA GPU (Triton's interpreter: ``IR_OP_PLATFORM=cuda TRITON_INTERPRET=1``) it
measures numerics only, on the CPU. Needs torch, triton and the installed ir packages only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ir_kernels_cuda import composite, quant
from ir_op import IrOp, ops

SHAPES = ((1, 4096), (64, 4096), (4096, 4096), (16384, 4096))
DTYPES = (torch.float16, torch.bfloat16, torch.float32)
ROTATE_BYTES = 120 * 2**20
MAX_CALLS_PER_GRAPH = 16384

Args = Callable[[torch.Tensor], tuple[Any, ...]]


@dataclasses.dataclass(frozen=True)
class Case:
    """One op that divides by a scale: its provider object, the provider and its arguments."""

    name: str
    op: IrOp
    owner: Any
    """The shared provider object whose ``launch`` the mode is set on."""
    provider: Callable[..., Any]
    args: Args
    """The op's arguments for an activation ``x`` of the shape (``[rows, 2 * cols]`` for the
    gated op)."""
    gated: bool = False


def _scale(x: torch.Tensor) -> torch.Tensor:
    """A calibrated static scale (amax / 448) times a factor, so its reciprocal is inexact."""
    return (x.float().abs().amax() / 448.0 * 1.37).reshape(1)


def _weight(x: torch.Tensor) -> torch.Tensor:
    return torch.randn(x.shape[-1], device=x.device).to(x.dtype)


CASES = (
    Case("static_scaled_fp8_quant", ops.static_scaled_fp8_quant, quant.STATIC_QUANT,
         quant.STATIC_QUANT.provider, lambda x: (x, _scale(x))),
    Case("dynamic_scaled_fp8_quant per tensor", ops.dynamic_scaled_fp8_quant, quant.DYNAMIC_QUANT,
         quant.DYNAMIC_QUANT.provider, lambda x: (x, False, None)),
    Case("dynamic_scaled_fp8_quant per token", ops.dynamic_scaled_fp8_quant, quant.DYNAMIC_QUANT,
         quant.DYNAMIC_QUANT.provider, lambda x: (x, True, None)),
    Case("rms_norm_static_fp8_quant", ops.rms_norm_static_fp8_quant, composite.NORM_QUANT,
         composite.NORM_QUANT.rms_norm_static_fp8_quant,
         lambda x: (x, _weight(x), 1e-6, torch.full((1,), 0.011, device=x.device))),
    Case("fused_add_rms_norm_static_fp8_quant", ops.fused_add_rms_norm_static_fp8_quant,
         composite.NORM_QUANT, composite.NORM_QUANT.fused_add_rms_norm_static_fp8_quant,
         lambda x: (x, torch.randn_like(x), _weight(x), 1e-6,
                    torch.full((1,), 0.011, device=x.device))),
    Case("silu_and_mul_static_fp8_quant", ops.silu_and_mul_static_fp8_quant,
         composite.SILU_AND_MUL_QUANT, composite.SILU_AND_MUL_QUANT.provider,
         lambda x: (x, _scale(x) * 0.3), gated=True),
)  # fmt: skip

MODES = {"exact": True, "reciprocal": False}


def _set_mode(case: Case, exact: bool) -> None:
    case.owner.launch = dataclasses.replace(case.owner.launch, exact_division=exact)


def _fp8_order(q: torch.Tensor) -> torch.Tensor:
    """e4m3fn bits as integers in the values' order (one apart: adjacent values)."""
    bits = q.view(torch.uint8).to(torch.int32)
    magnitude = bits & 0x7F
    return torch.where(bits >= 0x80, -magnitude, magnitude)


def compare(got: torch.Tensor, want: torch.Tensor) -> dict[str, float]:
    """Mismatch rate and largest fp8-step distance of fp8 ``got`` against ``want``."""
    nan_got = got.float().isnan()
    nan_want = want.float().isnan()
    distance = (_fp8_order(got) - _fp8_order(want)).abs()
    distance = torch.where(nan_got & nan_want, 0, distance)
    distance = torch.where(nan_got ^ nan_want, 255, distance)
    return {
        "mismatch_rate": float((distance != 0).float().mean()) if distance.numel() else 0.0,
        "max_fp8_steps": int(distance.max()) if distance.numel() else 0,
    }


def _first(result: Any) -> torch.Tensor:
    return result[0] if isinstance(result, tuple) else result


def _input(case: Case, shape: tuple[int, int], dtype: torch.dtype, device: str) -> torch.Tensor:
    rows, cols = shape
    width = 2 * cols if case.gated else cols
    return (torch.randn(rows, width, device=device) * 3).to(dtype)


def numerics(case: Case, shape: tuple[int, int], dtype: torch.dtype, device: str) -> dict[str, Any]:
    torch.manual_seed(0)
    args = case.args(_input(case, shape, dtype, device))
    want = case.op.native_fn(*args)
    found: dict[str, Any] = {}
    outputs = {}
    for mode, exact in MODES.items():
        _set_mode(case, exact)
        got = outputs[mode] = case.provider(*args)
        found[mode] = compare(_first(got), _first(want))
        if isinstance(got, tuple) and case.op is ops.dynamic_scaled_fp8_quant:
            found[mode]["scales_equal"] = bool(torch.equal(got[1], want[1]))
    # what the mode alone changes: the reciprocal's outputs against the exact ones
    found["reciprocal"]["vs_exact"] = compare(
        _first(outputs["reciprocal"]), _first(outputs["exact"])
    )
    if case.op is ops.static_scaled_fp8_quant:
        found["quotient_ulps"] = quotient_ulps(args[0].float(), args[1])
    return found


def quotient_ulps(x: torch.Tensor, scale: torch.Tensor) -> dict[str, float]:
    """float32 ulps between ``x * (1 / scale)`` and ``x / scale`` (both IEEE float32, as on the
    GPU): the arithmetic difference of the two modes, before saturation and the fp8 rounding."""
    exact = (x / scale).view(torch.int32).to(torch.int64)
    reciprocal = (x * (1.0 / scale)).view(torch.int32).to(torch.int64)
    distance = (exact - reciprocal).abs()
    return {"max": int(distance.max()), "rate": float((distance != 0).float().mean())}


def _time_us(case: Case, shape: tuple[int, int], repeats: int) -> dict[str, float]:
    """Per-call time of each mode: a CUDA graph of one call per rotating input set."""
    torch.manual_seed(0)
    sample = case.args(_input(case, shape, torch.bfloat16, "cuda"))
    bytes_per_call = sum(a.numel() * a.element_size() for a in sample if torch.is_tensor(a))
    sets = min(MAX_CALLS_PER_GRAPH, max(2, math.ceil(ROTATE_BYTES / bytes_per_call) + 1))
    inputs = [case.args(_input(case, shape, torch.bfloat16, "cuda")) for _ in range(sets)]
    times: dict[str, float] = {}
    for mode, exact in MODES.items():
        _set_mode(case, exact)
        for args in inputs[:2]:  # compile and bind outside the capture
            case.provider(*args)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for args in inputs:
                case.provider(*args)
        graph.replay()
        torch.cuda.synchronize()
        samples = []
        for _ in range(repeats):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) * 1000.0 / sets)
        times[mode] = statistics.median(samples)
        del graph
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="write every result as JSON")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--numerics-shapes", default=None,
                        help="shapes for the numerics, e.g. 1x4096,64x4096 (default: all; "
                        "without a GPU: 1x4096,64x4096,33x5120)")  # fmt: skip
    args = parser.parse_args()
    from ir_op.platforms import ensure_kernels_loaded

    ensure_kernels_loaded()
    on_gpu = torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    spec = args.numerics_shapes or ("" if on_gpu else "1x4096,64x4096,33x5120")
    numerics_shapes = (
        [tuple(int(n) for n in s.split("x")) for s in spec.split(",")] if spec else list(SHAPES)
    )
    results: list[dict[str, Any]] = []
    saved = {id(c.owner): c.owner.launch for c in CASES}
    try:
        for case in CASES:
            for shape in numerics_shapes:
                for dtype in DTYPES:
                    found = numerics(case, shape, dtype, device)  # type: ignore[arg-type]
                    results.append({"op": case.name, "shape": list(shape),
                                    "dtype": str(dtype).removeprefix("torch."),
                                    "numerics": found})  # fmt: skip
                    vs = found["reciprocal"]["vs_exact"]
                    print(f"{case.name:38} {shape!s:14} {results[-1]['dtype']:9} " + "  ".join(
                        f"{m}: {found[m]['mismatch_rate']:.2e} off native, "
                        f"<= {found[m]['max_fp8_steps']} step" for m in MODES)
                        + f"  reciprocal vs exact: {vs['mismatch_rate']:.2e}, "
                        f"<= {vs['max_fp8_steps']} step"
                        + (f"  float32 quotient: {found['quotient_ulps']['rate']:.2e} differ, "
                           f"<= {found['quotient_ulps']['max']} ulp"
                           if "quotient_ulps" in found else ""))  # fmt: skip
            if on_gpu:
                for shape in SHAPES:
                    times = _time_us(case, shape, args.repeats)
                    results.append({"op": case.name, "shape": list(shape), "dtype": "bfloat16",
                                    "time_us": times})  # fmt: skip
                    print(f"{case.name:38} {shape!s:14} bf16 time: exact {times['exact']:.2f} us,"
                          f" reciprocal {times['reciprocal']:.2f} us"
                          f" ({times['exact'] / times['reciprocal']:.3f}x)")  # fmt: skip
    finally:
        for case in CASES:
            case.owner.launch = saved[id(case.owner)]
    if args.out is not None:
        device_name = torch.cuda.get_device_name() if on_gpu else "cpu (Triton interpreter)"
        args.out.write_text(json.dumps({"device": device_name, "results": results}, indent=1))


if __name__ == "__main__":
    main()
