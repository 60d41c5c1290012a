"""Sweep the launch choices of the row kernels on the GPU; print the fastest per shape.

    python packages/ir-kernels-cuda/benchmarks/tune_rows.py [--ops rms_norm,...] [--out DIR]

For each op whose cuda provider launches through a ``RowTable`` (:class:`TableSlot`: the
``RowLaunch`` of the shared provider object, for the norms, the sparse GeGLU, per-token fp8
quantization and norm + quantization; default: ``rms_norm``, ``fused_add_rms_norm``,
``gelu_and_mul_sparse``), each
shape is timed with every candidate ``(rows per program, num_warps)`` that gives a thread 4 to 64
elements of a tile of at most 16384, as ``bench_ops.py`` times: replays of a CUDA graph up to
256 tokens (decode sizes), eager calls on inputs rotated through more than twice the L2 above.
Decode sizes (up to the table's ``decode_rows`` tokens) are also timed with programmatic
dependent launch off and on (``ir_kernels_cuda.launch.PDL``). Rows wider than the table's single
block are skipped (looped kernels).

The output says, per shape, the table's choice and its time, the best candidate and what it
gains, and at the end, per op and width, the choice to put in ``NVIDIA_ROW_TABLE`` for decode
launches (``decode_warps``) and for the others (``warps``): the one with the smallest total
time over those shapes. ``--out DIR`` also writes ``tune.json`` with every timing.
``--budget-s`` stops starting new shapes after that many seconds (what was skipped is printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from ir_kernels_cuda.launch import PDL
from ir_op import IrOp, enable_torch_wrap
from ir_op.platforms import ensure_kernels_loaded
from ir_triton import RowConfig, RowTable
from ir_triton.pdl import pdl_unsupported_reason

_BENCH_PATH = Path(__file__).resolve().parent / "bench_ops.py"
DEFAULT_OPS = "rms_norm,fused_add_rms_norm,gelu_and_mul_sparse"
MAX_TILE = 16384


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_ops", _BENCH_PATH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {_BENCH_PATH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_ops"] = module
    spec.loader.exec_module(module)
    return module


class FixedChoice:
    """Stands in for a RowTable: the same choice for every width and launch size."""

    decode_rows = 0

    def __init__(self, config: RowConfig) -> None:
        self.fixed = config

    def config(self, n_cols: int, n_rows: int | None = None) -> RowConfig:
        return self.fixed


def candidates(table: RowTable, n_cols: int) -> list[RowConfig]:
    """Every (rows, warps) whose tile is at most MAX_TILE with 4 to 64 elements per thread."""
    block = table.config(n_cols).block
    found = []
    for rows in (1, 2, 4, 8, 16, 32, 64):
        for warps in (1, 2, 4, 8, 16, 32):
            per_thread = block * rows / (warps * 32)
            if 4 <= per_thread <= 64 and block * rows <= max(MAX_TILE, block):
                found.append(RowConfig(block, rows, warps, looped=False))
    return found


def _label(config: RowConfig, pdl: bool | None) -> str:
    mode = "" if pdl is None else (" pdl" if pdl else " nopdl")
    return f"rows={config.rows} warps={config.num_warps}{mode}"


class TableSlot:
    """Where an op's cuda provider reads its ``RowTable``: the ``launch`` of the shared provider
    object (``ir_triton``'s ``RmsNormProviders``, ``GatedActivationProviders``, ...) whose
    method the provider is."""

    def __init__(self, op: IrOp) -> None:
        impl_fn = op.impls["cuda"].impl_fn
        owner = getattr(impl_fn, "__self__", None)
        if not hasattr(owner, "launch"):
            raise TypeError(f"{op.name}'s cuda provider is not a shared provider's method")
        self._owner: Any = owner
        self._saved: Any = owner.launch

    @property
    def table(self) -> RowTable:
        table: RowTable = self._owner.launch.table
        return table

    def set(self, table: Any) -> None:
        self._owner.launch = dataclasses.replace(self._owner.launch, table=table)

    def restore(self) -> None:
        self._owner.launch = self._saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default=DEFAULT_OPS)
    parser.add_argument("--tokens", type=int, nargs="+", default=[1, 16, 64, 256, 4096, 16384])
    parser.add_argument("--hidden", type=int, nargs="+", default=[4096, 8192])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    bench = _bench()
    ensure_kernels_loaded()
    started = time.monotonic()
    l2_bytes = torch.cuda.get_device_properties(0).L2_cache_size
    pdl_reason = pdl_unsupported_reason()
    print(
        f"{torch.cuda.get_device_name()}; times in us (graph replays up to 256 tokens); "
        f"PDL {'unsupported: ' + pdl_reason if pdl_reason else 'supported'}",
        flush=True,
    )
    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    # (op, hidden, regime) -> config label -> total us over the shapes of that regime
    totals: dict[tuple[str, int, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    table_choice: dict[tuple[str, int, str], str] = {}
    saved_pdl = PDL.enabled
    for name in args.ops.split(","):
        op = IrOp.registry[name]
        slot = TableSlot(op)
        table = slot.table
        try:
            for hidden in args.hidden:
                if table.config(hidden).looped:
                    print(f"{name} hidden {hidden}: looped kernel, skipped")
                    continue
                for tokens in args.tokens:
                    if args.budget_s is not None and time.monotonic() - started > args.budget_s:
                        skipped.append(f"{name} {tokens}x{hidden}")
                        continue
                    records += _sweep_shape(
                        bench, op, slot, table, tokens, hidden, args.repeats, l2_bytes,
                        pdl_reason is None, totals, table_choice,
                    )  # fmt: skip
        finally:
            slot.restore()
            PDL.enabled = saved_pdl
    print("\nSuggested table entries (smallest total time over the shapes of each regime):")
    for (name, hidden, regime), by_config in sorted(totals.items()):
        best = min(by_config, key=lambda label: by_config[label])
        current = table_choice[name, hidden, regime]
        gain = by_config[current] / by_config[best] - 1 if current in by_config else float("nan")
        print(
            f"  {name} hidden {hidden} {regime}: best {best} (table: {current}, "
            f"{gain:+.1%} from the best)"
        )
    if skipped:
        print(f"\nskipped (over --budget-s): {', '.join(skipped)}")
    print(f"sweep took {time.monotonic() - started:.0f} s")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "tune.json").write_text(json.dumps({"records": records}, indent=1))


def _sweep_shape(
    bench: ModuleType,
    op: IrOp,
    slot: TableSlot,
    table: RowTable,
    tokens: int,
    hidden: int,
    repeats: int,
    l2_bytes: int,
    pdl_supported: bool,
    totals: dict[tuple[str, int, str], dict[str, float]],
    table_choice: dict[tuple[str, int, str], str],
) -> list[dict[str, Any]]:
    def inputs() -> tuple[Any, ...]:
        return op.generate_inputs(
            num_tokens=tokens, hidden_size=hidden, dtype=torch.bfloat16, device="cuda"
        )

    first = inputs()
    total = bench.bytes_moved(first, op.native_fn(*first))
    sets = [first] + [inputs() for _ in range(bench._rotation(total, l2_bytes) - 1)]
    graph = tokens <= bench.GRAPH_MAX_TOKENS
    timer = bench.time_graph if graph else bench.time_eager
    decode = table.is_decode(tokens)
    regime = "decode" if decode else "bandwidth"
    current = table.config(hidden, tokens)
    modes: list[bool | None] = [False, True] if decode and pdl_supported else [None]
    results: list[tuple[float, RowConfig, bool | None]] = []
    with op.set_priority(["cuda"]), enable_torch_wrap(False):
        for config in dict.fromkeys([current, *candidates(table, hidden)]):
            slot.set(FixedChoice(config))
            for mode in modes:
                PDL.enabled = mode if mode is not None else None
                try:
                    us = timer(lambda a: op(*a), sets, repeats)
                except Exception as e:  # a config that does not compile: report, go on
                    print(f"  {op.name} {tokens}x{hidden} {_label(config, mode)}: {e!r:.120}")
                    continue
                results.append((us, config, mode))
    slot.restore()
    PDL.enabled = None
    del sets
    torch.cuda.empty_cache()
    default_mode = modes[-1]  # PDL on where supported, as the provider launches
    baseline = next(
        (us for us, c, m in results if c == current and m == default_mode), float("nan")
    )
    best_us, best, best_mode = min(results, key=lambda r: r[0])
    print(
        f"{op.name} {tokens}x{hidden} ({regime}, {total / 1e6:.3g} MB): table "
        f"{_label(current, default_mode)} {baseline:.2f}; best {_label(best, best_mode)} "
        f"{best_us:.2f} ({baseline / best_us - 1:+.1%}; {total / best_us / 1e6:.2f} TB/s)",
        flush=True,
    )
    if decode and pdl_supported:
        off = next((us for us, c, m in results if c == current and m is False), float("nan"))
        print(f"  PDL on/off for the table's choice: {baseline:.2f} / {off:.2f} us")
    key = (op.name, hidden, regime)
    table_choice[key] = _label(current, None)
    for us, config, mode in results:
        if mode == default_mode:
            totals[key][_label(config, None)] += us
    return [
        {
            "op": op.name,
            "tokens": tokens,
            "hidden": hidden,
            "bytes": total,
            "regime": regime,
            "rows": c.rows,
            "num_warps": c.num_warps,
            "pdl": m,
            "us": us,
            "table": c == current,
        }
        for us, c, m in results
    ]


if __name__ == "__main__":
    main()
