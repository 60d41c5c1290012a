"""Inductor lowering a stream of custom-op nodes with deep inputs, with and without the
fallback allow-list patch.

    python packages/ir-compile/benchmarks/fallback_allow_list.py [--nodes 50 100 200] [--depth 0]

The model is a stream of ``--nodes`` custom ops that Inductor has no lowering for, each a
distinct operator (Inductor decides on the fallback once per operator, so this is the worst
case), each fed the previous one's output, with ``--depth`` pointwise ops in between (default
none). A fallback kernel's text spells out its inputs, so the text of each op's input spells out
every earlier op of the stream: that is the deep input (in a model, the matmuls and kernel-set
ops between layers chain up the same way). Both runs compile the same model on the CPU with
Inductor's caches off; only the operators' namespace differs: one the patch allow-lists, one it
does not. Reported: the time Inductor spends lowering the custom-op nodes (``GraphLowering.
call_function`` on them, where the fallback decision and its log line happen) and the whole
compile. Torch 2.13 and later render the log line's text only when it is logged;
``--inductor-info-log`` turns that log on (as ``TORCH_LOGS=+inductor`` would).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

import ir_compile
from ir_compile.testing import inductor_caches_off


def make_ops(namespace: str, count: int) -> list[Callable[[Tensor], Tensor]]:
    ops = []
    for i in range(count):

        def kernel(x: Tensor, i: int = i) -> Tensor:
            return x * (1.0 + 1e-3 * i)

        op = torch.library.custom_op(f"{namespace}::step_{i}", mutates_args=())(
            functools.wraps(kernel)(lambda x, kernel=kernel: kernel(x))
        )
        op.register_fake(torch.empty_like)
        ops.append(op)
    return ops


def make_model(ops: list[Callable[[Tensor], Tensor]], depth: int) -> Callable[[Tensor], Tensor]:
    def model(x: Tensor) -> Tensor:
        for op in ops:
            for j in range(depth):
                x = torch.sin(x) * 0.5 + 0.01 * j
            x = op(x)
        return x

    return model


@contextmanager
def timed_custom_op_lowering(namespace: str) -> Iterator[list[float]]:
    from torch._inductor.graph import GraphLowering

    spent: list[float] = []
    original = GraphLowering.call_function

    @functools.wraps(original)
    def timed(self: GraphLowering, target: Any, args: Any, kwargs: Any) -> Any:
        if not str(getattr(target, "namespace", "")).startswith(namespace):
            return original(self, target, args, kwargs)
        start = time.perf_counter()
        try:
            return original(self, target, args, kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    GraphLowering.call_function = timed  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        GraphLowering.call_function = original  # type: ignore[method-assign]


def run(namespace: str, nodes: int, depth: int) -> str:
    """One compile; the table cells for it (or what stopped it)."""
    from torch._inductor.compile_fx import compile_fx

    model = make_model(make_ops(namespace, nodes), depth)
    x = torch.randn(64)
    torch._dynamo.reset()
    with inductor_caches_off(), timed_custom_op_lowering(namespace) as spent:
        start = time.perf_counter()
        try:
            torch.compile(model, backend=compile_fx, fullgraph=True)(x)
        except Exception as e:
            cause = getattr(e, "inner_exception", None) or e.__cause__ or e
            return (
                f"fails after {time.perf_counter() - start:.1f} s at node {len(spent)}: "
                f"{type(cause).__name__} | | |"
            )
        total = time.perf_counter() - start
    lowering = sum(spent)
    return f"{lowering:.2f} s | {lowering / nodes * 1e3:.1f} ms | {total:.1f} s |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--depth", type=int, default=0)
    parser.add_argument("--inductor-info-log", action="store_true")
    options = parser.parse_args()

    if options.inductor_info_log:
        graph_log = logging.getLogger("torch._inductor.graph")
        graph_log.setLevel(logging.INFO)
        graph_log.addHandler(logging.FileHandler(os.devnull))  # formats each record, discards it
    allowed = [f"ir_bench_allowed_{k}::" for k in range(len(options.nodes))]
    ir_compile.inductor_patches.install(prefixes=[*allowed, "ir_bench_warmup::"])
    run("ir_bench_warmup", 2, 2)  # imports, the C++ toolchain probe
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"distinct custom ops, {options.depth} pointwise ops between"
        + (", Inductor's info log on" if options.inductor_info_log else "")
    )
    print(
        "| nodes | custom-op namespace | lowering the custom-op nodes | per node | whole compile |"
    )
    print("|---:|---|---:|---:|---:|")
    for k, nodes in enumerate(options.nodes):
        for label, namespace in (
            ("allow-listed (patch)", f"ir_bench_allowed_{k}"),
            ("not allow-listed", f"ir_bench_other_{k}"),
        ):
            print(f"| {nodes} | {label} | {run(namespace, nodes, options.depth)}", flush=True)


if __name__ == "__main__":
    main()
