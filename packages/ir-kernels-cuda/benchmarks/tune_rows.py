"""Try other launch choices for the row kernels on the GPU; print the fastest per shape.

    python packages/ir-kernels-cuda/benchmarks/tune_rows.py [--ops rms_norm] [--hidden 4096 8192]

For each op whose cuda provider launches through a module-level ``ROW_TABLE`` (the norms, the
gated activations), each shape is timed with every ``(num_warps, rows per program)`` that gives
a thread between 1 and 64 elements, as ``bench_ops.py`` times (CUDA-graph replays up to 256
tokens, eager calls on inputs rotated through more than twice the L2 above), next to the choice
of the current table. Rows wider than the table's single block are skipped (looped kernels).
The output says, per shape, how much the best choice gains: the numbers to change in
``ir_op.triton.NVIDIA_ROW_TABLE`` if it is worth it.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch

from ir_op import IrOp, enable_torch_wrap
from ir_op.platforms import ensure_kernels_loaded
from ir_op.triton import RowConfig, RowTable

_BENCH_PATH = Path(__file__).resolve().parent / "bench_ops.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_ops", _BENCH_PATH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {_BENCH_PATH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_ops"] = module
    spec.loader.exec_module(module)
    return module


class FixedChoice:
    """Stands in for a RowTable: the same choice for every width."""

    def __init__(self, config: RowConfig) -> None:
        self.fixed = config

    def config(self, n_cols: int) -> RowConfig:
        return self.fixed


def candidates(table: RowTable, n_cols: int) -> list[RowConfig]:
    block = table.config(n_cols).block
    found = []
    for rows in (1, 2, 4, 8, 16, 32, 64):
        for warps in (1, 2, 4, 8, 16, 32):
            per_thread = block * rows / (warps * 32)
            if 1 <= per_thread <= 64 and block * rows <= 2 * table.max_block:
                found.append(RowConfig(block, rows, warps, looped=False))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="rms_norm,fused_add_rms_norm")
    parser.add_argument("--tokens", type=int, nargs="+", default=[1, 64, 256, 1024, 4096, 16384])
    parser.add_argument("--hidden", type=int, nargs="+", default=[4096, 8192])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    bench = _bench()
    ensure_kernels_loaded()
    l2_bytes = torch.cuda.get_device_properties(0).L2_cache_size
    print(f"{torch.cuda.get_device_name()}; times in us (graph replays up to 256 tokens)")
    for name in args.ops.split(","):
        op = IrOp.registry[name]
        module = sys.modules[op.impls["cuda"].impl_fn.__module__]
        table: RowTable = module.ROW_TABLE
        try:
            for hidden in args.hidden:
                if table.config(hidden).looped:
                    print(f"{name} hidden {hidden}: looped kernel, skipped")
                    continue
                for tokens in args.tokens:
                    sets = [
                        op.generate_inputs(
                            num_tokens=tokens,
                            hidden_size=hidden,
                            dtype=torch.bfloat16,
                            device="cuda",
                        )
                    ]
                    total = bench.bytes_moved(sets[0], op.native_fn(*sets[0]))
                    sets += [
                        op.generate_inputs(
                            num_tokens=tokens,
                            hidden_size=hidden,
                            dtype=torch.bfloat16,
                            device="cuda",
                        )
                        for _ in range(bench._rotation(total, l2_bytes) - 1)
                    ]
                    timer = bench.time_graph if tokens <= 256 else bench.time_eager
                    current = table.config(hidden)
                    results = []
                    with op.set_priority(["cuda"]), enable_torch_wrap(False):
                        for config in dict.fromkeys([current, *candidates(table, hidden)]):
                            module.ROW_TABLE = FixedChoice(config)
                            us = timer(lambda a, op=op: op(*a), sets, args.repeats)
                            results.append((us, config))
                    module.ROW_TABLE = table
                    baseline = next(us for us, c in results if c == current)
                    best_us, best = min(results, key=lambda r: r[0])
                    print(
                        f"{name} {tokens}x{hidden}: table rows={current.rows} "
                        f"warps={current.num_warps} {baseline:.2f}; best rows={best.rows} "
                        f"warps={best.num_warps} {best_us:.2f} ({baseline / best_us - 1:+.1%})",
                        flush=True,
                    )
                    del sets
        finally:
            module.ROW_TABLE = table


if __name__ == "__main__":
    main()
