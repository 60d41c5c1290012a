"""Per-call cost of ir-op dispatch, against calling the chosen implementation directly.

    python packages/ir-op/benchmarks/dispatch_overhead.py
    python packages/ir-op/benchmarks/dispatch_overhead.py --baseline OLD/packages/ir-op/src

The implementation does no work (it returns its input), so the numbers are pure call overhead.
Target: with torch wrap off and a first provider without a predicate, ``op(...)`` costs at most
0.5 us more than calling that provider's function directly.

Each case is measured twice: with the priority and wrap flag set as process defaults
(``set_default``, ``set_default_torch_wrap``: the serving case, no ``with`` block in force) and
inside ``set_priority`` / ``enable_torch_wrap`` blocks, which are context-local and read through
a ``ContextVar``.

``--baseline DIR`` compares with another ir-op source tree (for example ``git worktree add`` of an
older commit): this script runs in fresh interpreters, alternately against ``DIR`` (first on
``PYTHONPATH``) and against the installed ir-op, ``--rounds`` times each, and prints the best
round of each case for both and the difference, so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import timeit
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

import ir_op
from ir_op import enable_torch_wrap, register_op, set_default_torch_wrap
from ir_op.testing import isolated_registry


def passthrough(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> Tensor:
    return x


def takes_all(
    x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
) -> bool:
    return variance_size is None


def _per_call_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    timer = timeit.Timer(fn)
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


DIRECT = "direct call of the impl function"
TARGET_CASE = "op(...) wrap off, no predicate [defaults]"


def measure_all(number: int, repeat: int, only: Sequence[str] = ()) -> dict[str, float]:
    """Microseconds per call of each case (those whose label contains a word of ``only``, if
    given, and the direct call), in this interpreter."""
    x = torch.randn(1, 4096)
    w = torch.randn(4096)
    rows: dict[str, float] = {}

    def measure(label: str, fn: Callable[[], object]) -> None:
        if only and label != DIRECT and not any(word in label for word in only):
            return
        fn()  # first use applies defaults, loads kernel sets
        # The best timing: interference from other processes only ever adds time.
        rows[label] = _per_call_us(fn, number, repeat)

    with isolated_registry():
        op = register_op(name="bench_norm")(passthrough)
        op.register_impl("fast")(passthrough)
        op.register_impl("checked", supports_args=takes_all)(passthrough)

        measure(DIRECT, lambda: passthrough(x, w, 1e-6))

        # Process defaults: no block in force (the serving case).
        op.set_default(["fast"])
        set_default_torch_wrap(False)
        try:
            measure(TARGET_CASE, lambda: op(x, w, 1e-6))
            measure("op.dispatch(...) only [defaults]", lambda: op.dispatch(x, w, 1e-6))
            op.set_default(["checked", "native"])
            measure("op(...) wrap off, a predicate [defaults]", lambda: op(x, w, 1e-6))
            op.set_default(["fast"])
        finally:
            set_default_torch_wrap(True)
        measure("op(...) wrap on, torch.ops dispatcher [defaults]", lambda: op(x, w, 1e-6))

        # The same inside blocks.
        with op.set_priority(["fast"]):
            with enable_torch_wrap(False):
                measure("op(...) wrap off, no predicate [blocks]", lambda: op(x, w, 1e-6))
                measure("op.dispatch(...) only [blocks]", lambda: op.dispatch(x, w, 1e-6))
            measure("op(...) wrap on, torch.ops dispatcher [blocks]", lambda: op(x, w, 1e-6))
        with op.set_priority(["checked", "native"]), enable_torch_wrap(False):
            measure("op(...) wrap off, a predicate [blocks]", lambda: op(x, w, 1e-6))
    return rows


def _run_child(src: str | None, number: int, repeat: int, only: Sequence[str]) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--json",
            *("--number", str(number), "--repeat", str(repeat)),
            *(arg for word in only for arg in ("--only", word)),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows: dict[str, float] = json.loads(out.splitlines()[-1])
    return rows


def _alternating(
    baseline: str, rounds: int, number: int, repeat: int, only: Sequence[str]
) -> Iterator[tuple[str, dict[str, float]]]:
    for _ in range(rounds):
        yield "baseline", _run_child(baseline, number, repeat, only)
        yield "current", _run_child(None, number, repeat, only)


def compare(baseline: str, rounds: int, number: int, repeat: int, only: Sequence[str]) -> None:
    best: dict[str, dict[str, float]] = {"baseline": {}, "current": {}}
    for side, rows in _alternating(baseline, rounds, number, repeat, only):
        for label, us in rows.items():
            best[side][label] = min(us, best[side].get(label, float("inf")))
    print(f"baseline: {baseline}; current: {os.path.dirname(ir_op.__file__)}")
    print(f"best of {rounds} alternating rounds, each the best of {repeat} x {number} calls")
    print(f"{'case':<52} {'baseline':>9} {'current':>9} {'delta':>8}  (us/call)")
    for label, us in best["current"].items():
        old = best["baseline"].get(label)
        if old is None:
            print(f"{label:<52} {'-':>9} {us:9.3f}")
        else:
            print(f"{label:<52} {old:9.3f} {us:9.3f} {us - old:+8.3f}")


def report(rows: dict[str, float]) -> None:
    cpu = platform.processor() or platform.machine()
    print(f"python {platform.python_version()}, torch {torch.__version__}, {cpu}")
    print(f"{'case':<52} {'us/call':>8}")
    for label, us in rows.items():
        print(f"{label:<52} {us:8.3f}")
    if TARGET_CASE not in rows:
        return
    overhead = rows[TARGET_CASE] - rows[DIRECT]
    verdict = "meets" if overhead <= 0.5 else "MISSES"
    print(f"dispatch overhead (wrap off) = {overhead:.3f} us: {verdict} the 0.5 us target")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--number", type=int, default=200_000, help="calls per timing")
    parser.add_argument("--repeat", type=int, default=7, help="timings per case (the best)")
    parser.add_argument("--baseline", metavar="DIR", help="another ir-op src dir to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (--baseline)")
    parser.add_argument(
        "--only", action="append", default=[], help="measure the cases whose name contains this"
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        compare(args.baseline, args.rounds, args.number, args.repeat, args.only)
    elif args.json:
        print(json.dumps(measure_all(args.number, args.repeat, args.only)))
    else:
        report(measure_all(args.number, args.repeat, args.only))


if __name__ == "__main__":
    main()
