"""Per-call host cost of argument validation and the gradient rule on ``ops.rms_norm`` 1x4096.

    python packages/ir-op/benchmarks/validation_overhead.py

A provider that returns its input is put first, so the numbers are call overhead, not the
norm. Each case runs with the op's validator and with it removed (``op.validate = None``),
interleaved, and reports the minimum over many short samples: on a shared machine the minimum
estimates the uncontended cost, and interleaving keeps drift out of the differences. Budget
(issue 12): validation adds at most 0.3 us per eager call.
"""

from __future__ import annotations

import argparse
import platform
import timeit
from collections.abc import Callable

import torch
from torch import Tensor

from ir_op import enable_torch_wrap, ops


def passthrough(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    return x


def _sample_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=2000, help="calls per sample")
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)

    x = torch.randn(1, 4096)
    w = torch.randn(4096)
    op = ops.rms_norm
    op.register_impl("bench_passthrough")(passthrough)
    validate = op.validate
    assert validate is not None
    best: dict[str, float] = {}

    def measure(label: str, fn: Callable[[], object]) -> None:
        us = _sample_us(fn, args.number)
        best[label] = min(best.get(label, us), us)

    with op.set_priority(["bench_passthrough"]):
        for _ in range(args.samples):
            measure("direct call of the provider function", lambda: passthrough(x, w, 1e-6))
            measure("op.validate(...) alone", lambda: validate(x, w, 1e-6))
            measure("torch.is_grad_enabled()", torch.is_grad_enabled)
            for wrap in (False, True):
                for grad in (False, True):
                    for checked in (False, True):
                        op.validate = validate if checked else None
                        label = (
                            f"ops.rms_norm wrap {'on' if wrap else 'off'}, "
                            f"{'grad mode' if grad else 'no_grad'}, "
                            f"{'validated' if checked else 'validator removed'}"
                        )
                        with enable_torch_wrap(wrap), torch.set_grad_enabled(grad):
                            measure(label, lambda: op(x, w, 1e-6))
            op.validate = validate

    cpu = platform.processor() or platform.machine()
    print(f"python {platform.python_version()}, torch {torch.__version__}, {cpu}")
    print(f"{'case (minimum over samples)':<62} {'us/call':>8}")
    for label, us in best.items():
        print(f"{label:<62} {us:8.3f}")
    for wrap in ("off", "on"):
        for mode in ("no_grad", "grad mode"):
            base = f"ops.rms_norm wrap {wrap}, {mode}"
            extra = best[f"{base}, validated"] - best[f"{base}, validator removed"]
            print(f"validation adds {extra:.3f} us ({base})")


if __name__ == "__main__":
    main()
