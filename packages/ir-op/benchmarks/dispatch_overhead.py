"""Per-call cost of ir-op dispatch, against calling the chosen implementation directly.

    python packages/ir-op/benchmarks/dispatch_overhead.py

The implementation does no work (it returns its input), so the numbers are pure call overhead.
Target: with torch wrap off and a first provider without a predicate, ``op(...)`` costs at most
0.5 us more than calling that provider's function directly.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import timeit

import torch
from torch import Tensor

from ir_op import enable_torch_wrap, register_op
from ir_op.testing import isolated_registry


def passthrough(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    return x


def takes_all(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    return variance_size is None


def _per_call_us(fn: object, number: int, repeat: int) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    x = torch.randn(1, 4096)
    w = torch.randn(4096)
    rows: list[tuple[str, float]] = []
    with isolated_registry():
        op = register_op(name="bench_norm")(passthrough)
        op.register_impl("fast")(passthrough)
        op.register_impl("checked", supports_args=takes_all)(passthrough)

        def measure(label: str, fn: object) -> float:
            us = statistics.median(_per_call_us(fn, args.number, 1) for _ in range(args.repeat))
            rows.append((label, us))
            return us

        direct = measure("direct call of the impl function", lambda: passthrough(x, w, 1e-6))
        with op.set_priority(["fast"]):
            with enable_torch_wrap(False):
                wrapped_off = measure(
                    "op(...) wrap off, first impl has no predicate", lambda: op(x, w, 1e-6)
                )
                measure("op.dispatch(...) only", lambda: op.dispatch(x, w, 1e-6))
            measure("op(...) wrap on (torch.ops dispatcher)", lambda: op(x, w, 1e-6))
        with op.set_priority(["checked", "native"]), enable_torch_wrap(False):
            measure("op(...) wrap off, first impl has a predicate", lambda: op(x, w, 1e-6))

    cpu = platform.processor() or platform.machine()
    print(f"python {platform.python_version()}, torch {torch.__version__}, {cpu}")
    print(f"{'case':<50} {'us/call':>8}")
    for label, us in rows:
        print(f"{label:<50} {us:8.3f}")
    overhead = wrapped_off - direct
    verdict = "meets" if overhead <= 0.5 else "MISSES"
    print(f"dispatch overhead (wrap off) = {overhead:.3f} us: {verdict} the 0.5 us target")


if __name__ == "__main__":
    main()
