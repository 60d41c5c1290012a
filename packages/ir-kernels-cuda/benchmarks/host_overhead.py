"""Host time per eager call of ``rms_norm`` at 1x4096 bf16, through ir_op dispatch, torch wrap off.

    python packages/ir-kernels-cuda/benchmarks/host_overhead.py [--calls 5000] [--json FILE]

Measured in one run, on the same tensors:

- ``ops.rms_norm`` dispatching to the cuda provider, which launches through ir_op.triton's fast
  path (the target: at most 8 us);
- the same with the fast path off, so the provider launches with Triton's own ``kernel[grid]``;
- the bare launches without dispatch or allocation: the fast launcher, and ``kernel[grid]``;
- ``torch.nn.functional.rms_norm`` and the op's native implementation (dispatched, wrap off);
- for reference: ``ops.rms_norm`` with torch wrap on (through the dispatcher) and ``empty_like``.

A row's number is the wall time of a loop of calls, divided by the number of calls, between two
synchronizations, median over repeats. Each call enqueues about 2 us of GPU work, less than its
host time, so the GPU never holds the host back and the loop measures host time.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
import triton

from ir_kernels_cuda import norm
from ir_op import enable_torch_wrap, ops
from ir_op.triton import fast_launch

TARGET_US = 8.0
HIDDEN = 4096
EPS = 1e-6


def host_us_per_call(fn: Callable[[], Any], calls: int, repeats: int) -> float:
    for _ in range(200):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
        torch.cuda.synchronize()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    x = torch.randn(1, HIDDEN, device="cuda").to(torch.bfloat16)
    w = torch.randn(HIDDEN, device="cuda").to(torch.bfloat16)
    out = torch.empty_like(x)
    config = norm.ROW_TABLE.config(HIDDEN)
    grid = config.grid(1)
    kernel_args = (x, HIDDEN, w, out, 1, EPS)
    constexprs = (HIDDEN, HIDDEN, config.block, config.rows, True)
    op = ops.rms_norm

    def bare_triton() -> None:
        norm.rms_norm_rows_kernel[grid](*kernel_args, *constexprs, num_warps=config.num_warps)

    def bare_fast() -> None:
        norm.ROWS_LAUNCHER.launch(grid, *kernel_args, *constexprs, num_warps=config.num_warps)

    rows: list[tuple[str, float]] = []

    def measure(label: str, fn: Callable[[], Any]) -> float:
        us = host_us_per_call(fn, args.calls, args.repeats)
        rows.append((label, us))
        return us

    with op.set_priority(["cuda"]), enable_torch_wrap(False):
        assert op.dispatch(x, w, EPS).provider == "cuda"
        op(x, w, EPS)
        slow_before = norm.ROWS_LAUNCHER.slow_launches
        fast_us = measure("ops.rms_norm -> cuda, fast launch (wrap off)", lambda: op(x, w, EPS))
        fast_path_taken = norm.ROWS_LAUNCHER.slow_launches == slow_before
        with fast_launch(False):
            measure("ops.rms_norm -> cuda, Triton launch (wrap off)", lambda: op(x, w, EPS))
    measure("bare fast launch (no dispatch, no allocation)", bare_fast)
    measure("bare Triton kernel[grid](...) (no dispatch, no allocation)", bare_triton)
    measure("F.rms_norm", lambda: F.rms_norm(x, (HIDDEN,), w, EPS))
    with op.set_priority(["native"]), enable_torch_wrap(False):
        measure("ops.rms_norm -> native (wrap off)", lambda: op(x, w, EPS))
    with op.set_priority(["cuda"]), enable_torch_wrap(True):
        measure("ops.rms_norm -> cuda, fast launch (wrap on)", lambda: op(x, w, EPS))
    measure("torch.empty_like (allocation alone)", lambda: torch.empty_like(x))

    device = torch.cuda.get_device_name()
    print(
        f"{device}; torch {torch.__version__}, triton {triton.__version__}, "
        f"python {platform.python_version()}, {platform.processor() or platform.machine()}"
    )
    print(f"rms_norm 1x{HIDDEN} bf16, {args.calls} calls x {args.repeats} repeats (median)")
    print(f"{'host us per call':>16}  case")
    for label, us in rows:
        print(f"{us:16.2f}  {label}")
    verdict = "meets" if fast_us <= TARGET_US and fast_path_taken else "MISSES"
    print(
        f"fast path taken: {fast_path_taken}; {fast_us:.2f} us per call {verdict} the "
        f"{TARGET_US} us target"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "device": device,
                    "torch": torch.__version__,
                    "triton": triton.__version__,
                    "rows": [{"case": label, "host_us": us} for label, us in rows],
                    "fast_path_taken": fast_path_taken,
                    "target_us": TARGET_US,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
