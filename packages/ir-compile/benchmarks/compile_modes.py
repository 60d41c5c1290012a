"""A Llama-shaped stack compiled by stock Inductor and by ``ir_compile.backend`` (native and
kernel-set lowering), in the default mode and with ``mode="reduce-overhead"`` (CUDA graphs).

    python packages/ir-compile/benchmarks/compile_modes.py [--layers 4] [--hidden 4096]
        [--intermediate 14336] [--shapes 32x1 1x1024] [--modes default reduce-overhead]
        [--kernel-set cuda] [--device cuda]

Each layer: residual add + RMSNorm (``ops.rms_norm`` / the fused add variant), a QKV-sized and
an output projection, RMSNorm, gate-up projection, ``ops.silu_and_mul``, down projection
(random bf16 weights, no attention: the norms and their neighbours are what the lowering
changes). Rows:

- ``stock``: torch wrap off and every op on ``native``, so Dynamo inlines the native
  implementations and plain Inductor compiles them (``torch.compile(mode=...)``);
- ``ir native``: ``ir_compile.backend(priority=native, mode=...)``;
- ``ir <kernel set>``: ``ir_compile.backend(priority="<op>=<kernel set>,native;...", mode=...)``.

Reported per row and shape: ms per forward (CUDA events, median of ``--iters`` after
``--warmup``), the compile's seconds, the lowering's seconds, fusions applied and clones
removed / kept (by rule). ``--device cpu`` with small sizes smoke-tests the script (there
Inductor folds the projection and the residual add into ``addmm``, so ``add_rms_norm`` finds
no add to fuse).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import Tensor

import ir_compile
from ir_compile.testing import inductor_caches_off
from ir_op import IrOpPriorityConfig, enable_torch_wrap, ops

NORM_OPS = ("rms_norm", "fused_add_rms_norm")
ALL_OPS = (*NORM_OPS, "silu_and_mul")


class Layer(torch.nn.Module):
    def __init__(self, hidden: int, intermediate: int, dtype: torch.dtype) -> None:
        super().__init__()

        def weight(rows: int, cols: int) -> torch.nn.Parameter:
            return torch.nn.Parameter(torch.randn(rows, cols, dtype=dtype) / cols**0.5, False)

        self.norm_in = torch.nn.Parameter(torch.rand(hidden, dtype=dtype) + 0.5, False)
        self.norm_post = torch.nn.Parameter(torch.rand(hidden, dtype=dtype) + 0.5, False)
        self.qkv = weight(hidden * 3 // 2, hidden)
        self.out = weight(hidden, hidden * 3 // 2)
        self.gate_up = weight(2 * intermediate, hidden)
        self.down = weight(hidden, intermediate)


class Stack(torch.nn.Module):
    def __init__(self, layers: int, hidden: int, intermediate: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.layers = [Layer(hidden, intermediate, dtype) for _ in range(layers)]
        self.registered = torch.nn.ModuleList(self.layers)  # parameters move with .to()

    def forward(self, x: Tensor) -> Tensor:
        residual = torch.zeros_like(x)
        for layer in self.layers:
            residual = x + residual  # with the norm: add_rms_norm fuses it (twice a layer)
            h = ops.rms_norm(residual, layer.norm_in, 1e-5)
            h = h @ layer.qkv.t() @ layer.out.t()
            residual = h + residual
            h = ops.rms_norm(residual, layer.norm_post, 1e-5)
            x = ops.silu_and_mul(h @ layer.gate_up.t()) @ layer.down.t()
        out: Tensor = x + residual
        return out


def timed_ms(fn: Callable[[], Any], device: str, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iters):
        if device == "cuda":
            start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            samples.append(start.elapsed_time(end))
        else:
            began = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - began) * 1e3)
    return float(statistics.median(samples))


@contextmanager
def row(kind: str, priority: IrOpPriorityConfig) -> Iterator[None]:
    wrap = enable_torch_wrap(False) if kind == "stock" else nullcontext()
    with wrap, priority.set_priority():
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--intermediate", type=int, default=14336)
    parser.add_argument("--shapes", nargs="+", default=["32x1", "1x1024"])
    parser.add_argument("--modes", nargs="+", default=["default", "reduce-overhead"])
    parser.add_argument("--kernel-set", default="cuda")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--iters", type=int, default=100)
    args = parser.parse_args()

    torch.manual_seed(0)
    dtype = torch.bfloat16
    model = Stack(args.layers, args.hidden, args.intermediate, dtype).to(args.device)
    native = IrOpPriorityConfig.from_dict({op: ["native"] for op in ALL_OPS})
    chain = list(dict.fromkeys([args.kernel_set, "native"]))
    kernels = IrOpPriorityConfig.from_dict(dict.fromkeys(NORM_OPS, chain))
    rows: list[tuple[str, IrOpPriorityConfig | None]] = [
        ("stock", None),
        ("ir native", native),
        (f"ir {args.kernel_set}", kernels),
    ]
    print(f"torch {torch.__version__}, {args.device}, {args.layers} layers, hidden {args.hidden}")
    columns = ["mode", "shape", "row", "ms/forward", "compile s", "lowering s", "fusions"]
    columns += ["clones removed", "kept"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for mode in args.modes:
        for shape in args.shapes:
            batch, tokens = (int(v) for v in shape.split("x"))
            x = torch.randn(batch * tokens, args.hidden, dtype=dtype, device=args.device)
            for name, priority in rows:
                torch._dynamo.reset()
                if priority is None:
                    compiled = torch.compile(model, mode=mode)
                    context = row("stock", native)
                    backend = None
                else:
                    backend = ir_compile.backend(priority=priority, mode=mode)
                    compiled = torch.compile(model, backend=backend)
                    context = row(name, priority)
                with context, inductor_caches_off(), torch.no_grad():
                    began = time.perf_counter()
                    compiled(x)
                    if args.device == "cuda":
                        torch.cuda.synchronize()
                    compile_s = time.perf_counter() - began
                    ms = timed_ms(
                        functools.partial(compiled, x), args.device, args.warmup, args.iters
                    )
                if backend is None:
                    extra = "| - | - | - | - |"
                else:
                    report = backend.report
                    fused = sum(report.fusions.values())
                    kept = ", ".join(sorted(set(report.clones_kept.values()))) or "-"
                    extra = (
                        f"| {report.lowering_seconds:.2f} | {fused} | {report.clones_removed} "
                        f"| {len(report.clones_kept)} ({kept}) |"
                    )
                print(f"| {mode} | {shape} | {name} | {ms:.3f} | {compile_s:.1f} {extra}")


if __name__ == "__main__":
    main()
