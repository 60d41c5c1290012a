"""Per-call host cost of argument validation and the gradient rule on ``ops.rms_norm`` 1x4096.

    python packages/ir-op/benchmarks/validation_overhead.py

A provider that returns its input is put first, so the numbers are call overhead, not the
norm. Run it on two checkouts (before and after a change) and compare; the script needs
nothing that an older ir-op lacks. Budget (issue 12): validation adds at most 0.3 us per
eager call.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import timeit
from collections.abc import Callable

import torch
from torch import Tensor

from ir_op import enable_torch_wrap, ops


def passthrough(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    return x


def _per_call_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    runs = [min(timeit.repeat(fn, number=number, repeat=1)) / number * 1e6 for _ in range(repeat)]
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)

    x = torch.randn(1, 4096)
    w = torch.randn(4096)
    op = ops.rms_norm
    op.register_impl("bench_passthrough")(passthrough)
    rows: list[tuple[str, float]] = []

    def measure(label: str, fn: Callable[[], object]) -> None:
        rows.append((label, _per_call_us(fn, args.number, args.repeat)))

    measure("direct call of the provider function", lambda: passthrough(x, w, 1e-6))
    validate = getattr(op, "validate", None)
    if validate is not None:
        measure("op.validate(...) alone", lambda: validate(x, w, 1e-6))
    with op.set_priority(["bench_passthrough"]):
        for grad in (False, True):
            with torch.set_grad_enabled(grad):
                mode = "grad mode on" if grad else "no_grad"
                for wrap in (False, True):
                    with enable_torch_wrap(wrap):
                        measure(f"ops.rms_norm, wrap {'on' if wrap else 'off'}, {mode}",
                                lambda: op(x, w, 1e-6))  # fmt: skip
    with op.set_priority(["native"]), torch.no_grad(), enable_torch_wrap(False):
        measure("ops.rms_norm native (computes), wrap off", lambda: op(x, w, 1e-6))

    cpu = platform.processor() or platform.machine()
    print(f"python {platform.python_version()}, torch {torch.__version__}, {cpu}")
    print(f"{'case':<52} {'us/call':>8}")
    for label, us in rows:
        print(f"{label:<52} {us:8.3f}")


if __name__ == "__main__":
    main()
