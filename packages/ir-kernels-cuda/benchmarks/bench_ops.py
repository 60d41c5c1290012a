"""Throughput of the cuda provider against the memory-bandwidth ceiling and the alternatives.

    python packages/ir-kernels-cuda/benchmarks/bench_ops.py [--out DIR] [--ops a,b] [--quick]
    python packages/ir-kernels-cuda/benchmarks/bench_ops.py --report R.json [R2.json ...] --out DIR

Every op with a ``cuda`` provider is measured (an op joins as soon as it has one), in bf16, for
tokens {1, 16, 64, 256, 1024, 4096, 16384} x hidden {4096, 8192}, with inputs from the op's own
generator. Providers, measured in the same run:

- ``copy``: a device-to-device copy (``Tensor.copy_``) moving the same number of bytes (half
  read, half written): the ceiling;
- ``copy_kernel``: the same bytes moved by a one-line Triton copy kernel launched exactly like
  the cuda provider's kernels (ir_triton's bound launcher, with programmatic dependent launch
  when the provider uses it): the floor of any kernel moving these bytes, launch costs
  included. In CUDA graphs ``copy`` is a memcpy node, which the driver may run on a copy
  engine or with other launch costs than a kernel node, so at decode sizes this is the fairer
  reference;
- ``cuda``: the provider, called through ir_op dispatch with torch wrap off;
- ``native``: the op's native function in eager;
- ``compile``: ``torch.compile`` of the native function, Inductor, mode ``default`` (unless
  ``--compile-mode``), static shapes;
- ``liger``: Liger-Kernel's RMSNorm forward (``rms_norm`` only), when ``liger_kernel`` imports;
- ``unfused``: for composite ops, each component through its own provider.

Effective TB/s = bytes of every input and output tensor / time (of a gathered table, such as
rotary's cos/sin cache, only the rows read). Eager time: CUDA events around a
loop of calls over input sets rotated so that they span more than twice the L2 cache, median of
repeats. Sizes up to 256 tokens are also timed as replays of a CUDA graph of such calls, which
is what decoding runs; targets at those sizes use the graph times. Every provider, ``copy`` and
``copy_kernel`` included, rotates through the same number of buffers (at most 64): one graph of
at least 64 calls, each on the next set, replayed; below a few hundred KB per set all of them fit
in the L2, so decode-sized graph times are L2-resident for every provider alike.

Writes ``results.json``, ``RESULTS.md`` (the tables, and each target met or missed) and
``throughput.png`` (TB/s against tokens per provider; needs matplotlib) into ``--out`` (default:
this directory). ``--report`` rebuilds the last two from saved results, without a GPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import triton
import triton.language as tl

from ir_kernels_cuda.launch import PDL as pdl_enabled
from ir_op import IrOp, enable_torch_wrap
from ir_op.platforms import ensure_kernels_loaded
from ir_triton import KernelLauncher
from ir_triton.pdl import wait_for_previous_kernel

TOKENS = (1, 16, 64, 256, 1024, 4096, 16384)
HIDDEN = (4096, 8192)
GRAPH_MAX_TOKENS = 256
PROVIDERS = ("copy", "copy_kernel", "cuda", "native", "compile", "liger", "unfused")
HERE = Path(__file__).resolve().parent

# Targets of the issue, checked in RESULTS.md.
CEILING_SHARE = 0.97  # rms_norm and fused_add_rms_norm at >= 4096 tokens
CEILING_OPS = ("rms_norm", "fused_add_rms_norm")
COMPILE_SPEEDUP = 1.10  # over torch.compile at 256..4096 tokens (and >= 1.0 everywhere)
DECODE_US = 1.8  # <= 64 tokens, hidden 4096, in a CUDA graph
FUSED_QUANT_OP = "rms_norm_static_fp8_quant"
FUSED_QUANT_SPEEDUP = 1.7  # over its two unfused kernels at 4096 x 4096


# -- measuring ----------------------------------------------------------------------------------


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    return []


def bytes_moved(args: Sequence[Any], outputs: Any, op_name: str = "") -> int:
    """Bytes of every input and output tensor: what a perfect kernel reads and writes once.

    A table that a kernel gathers rows from counts only the rows gathered (at most all of it):
    ``rotary_embedding`` reads one ``cos_sin_cache`` row per position, not the whole cache.
    """
    total = sum(t.numel() * t.element_size() for t in _tensors(list(args)) + _tensors(outputs))
    if op_name == "rotary_embedding":
        positions, cache = args[0], args[4]
        cache_bytes = cache.numel() * cache.element_size()
        gathered = positions.numel() * cache.shape[-1] * cache.element_size()
        total -= cache_bytes - min(cache_bytes, gathered)
    return total


def _events_us(run: Callable[[], None], calls: int, repeats: int) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(repeats):
        start.record()
        run()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1e3 / calls)
    return statistics.median(samples)


def time_eager(fn: Callable[[Any], Any], sets: Sequence[Any], repeats: int) -> float:
    """us per call of ``fn`` over the rotated ``sets``, called in a plain loop."""
    n = len(sets)
    calls = n

    def loop() -> None:
        for i in range(calls):
            fn(sets[i % n])

    loop()  # warm up (compiles)
    torch.cuda.synchronize()
    while calls < 4096:  # a loop of about 20 ms makes the events' own cost negligible
        us = _events_us(loop, calls, 1)
        if us * calls >= 20_000:
            break
        calls = min(4096, max(2 * calls, math.ceil(calls * 20_000 / max(us * calls, 1.0))))
    return _events_us(loop, calls, repeats)


def time_graph(fn: Callable[[Any], Any], sets: Sequence[Any], repeats: int) -> float:
    """us per call of ``fn`` captured in a CUDA graph of at least 64 calls, replayed."""
    n = len(sets)
    calls = max(n, 64)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for s in sets:
            fn(s)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(calls):
            fn(sets[i % n])
    for _ in range(3):
        graph.replay()
    torch.cuda.synchronize()
    return _events_us(graph.replay, calls, repeats)


@triton.jit  # type: ignore[untyped-decorator]
def copy_kernel(src, dst, n_bytes, BLOCK: tl.constexpr, USE_PDL: tl.constexpr):  # type: ignore[no-untyped-def]
    """``dst[:n] = src[:n]`` (bytes), ``BLOCK`` per program, first out of L2 for the source."""
    if USE_PDL:
        wait_for_previous_kernel()
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n_bytes
    data = tl.load(src + offsets, mask=mask, eviction_policy="evict_first")
    tl.store(dst + offsets, data, mask=mask)


COPY_BLOCK = 16384  # bytes per program: 8 x 16-byte vectors per thread at 4 warps
COPY_LAUNCHER = KernelLauncher(copy_kernel)


_COPY_BOUND: dict[bool, Any] = {}


def kernel_copy(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Copy ``pair[0]`` into ``pair[1]`` (uint8) with :func:`copy_kernel`."""
    src, dst = pair
    n = src.numel()
    use_pdl = pdl_enabled()
    bound = _COPY_BOUND.get(use_pdl)
    if bound is None:
        bound = COPY_LAUNCHER.bind(COPY_BLOCK, use_pdl, num_warps=4, launch_pdl=use_pdl)
        _COPY_BOUND[use_pdl] = bound
    bound.launch(((n + COPY_BLOCK - 1) // COPY_BLOCK,), src, dst, n)


def _rotation(bytes_per_set: int, l2_bytes: int) -> int:
    """How many input sets span more than twice the L2 cache (at most 64)."""
    return max(1, min(64, math.ceil(2 * l2_bytes / max(bytes_per_set, 1))))


def _liger_rms_norm() -> Callable[..., Any] | None:
    try:
        from liger_kernel.ops.rms_norm import LigerRMSNormFunction
    except ImportError:
        return None

    def run(x: torch.Tensor, weight: torch.Tensor, epsilon: float) -> Any:
        # casting mode "llama": normalize in fp32, round, then weight: ir_op's semantics
        return LigerRMSNormFunction.apply(x, weight, epsilon, 0.0, "llama", False)

    return run


def runners(op: IrOp, compile_mode: str) -> list[tuple[str, list[str], Callable[[Any], Any]]]:
    """``(provider, priority the op is set to while it runs, fn(args))`` for ``op``."""
    found: list[tuple[str, list[str], Callable[[Any], Any]]] = [
        ("cuda", ["cuda"], lambda a: op(*a)),
        ("native", ["native"], lambda a: op.native_fn(*a)),
    ]
    if compile_mode != "none":
        compiled = torch.compile(op.native_fn, dynamic=False, mode=compile_mode)
        found.append(("compile", ["native"], lambda a: compiled(*a)))
    liger = _liger_rms_norm()
    if op.name == "rms_norm" and liger is not None:
        found.append(("liger", ["native"], lambda a: liger(a[0], a[1], a[2])))
    if "unfused" in op.impls:
        found.append(("unfused", ["unfused"], lambda a: op(*a)))
    return found


def measure_op(
    op: IrOp, tokens: int, hidden: int, compile_mode: str, repeats: int, l2_bytes: int
) -> list[dict[str, Any]]:
    def inputs() -> tuple[Any, ...]:
        return op.generate_inputs(
            num_tokens=tokens, hidden_size=hidden, dtype=torch.bfloat16, device="cuda"
        )

    probe = inputs()
    total = bytes_moved(probe, op.native_fn(*probe), op.name)
    sets = [probe] + [inputs() for _ in range(_rotation(total, l2_bytes) - 1)]
    half = max(total // 2, 1)
    copies = [
        (torch.empty(half, dtype=torch.uint8, device="cuda"),
         torch.empty(half, dtype=torch.uint8, device="cuda"))
        for _ in range(_rotation(total, l2_bytes))
    ]  # fmt: skip
    with_graph = tokens <= GRAPH_MAX_TOKENS
    records: list[dict[str, Any]] = []

    def record(provider: str, us_eager: float, us_graph: float | None, note: str = "") -> None:
        records.append(
            {
                "op": op.name,
                "tokens": tokens,
                "hidden": hidden,
                "bytes": total,
                "provider": provider,
                "us_eager": us_eager,
                "us_graph": us_graph,
                "note": note,
            }
        )

    def copy(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
        pair[1].copy_(pair[0])

    record(
        "copy",
        time_eager(copy, copies, repeats),
        time_graph(copy, copies, repeats) if with_graph else None,
    )
    record(
        "copy_kernel",
        time_eager(kernel_copy, copies, repeats),
        time_graph(kernel_copy, copies, repeats) if with_graph else None,
    )
    for provider, priority, fn in runners(op, compile_mode):
        with op.set_priority(priority), enable_torch_wrap(False):
            chosen = op.dispatch(*probe).provider
            try:
                eager = time_eager(fn, sets, repeats)
                graph = time_graph(fn, sets, repeats) if with_graph else None
            except Exception as e:  # one provider failing must not lose the others' numbers
                record(provider, math.nan, None, f"{type(e).__name__}: {e}"[:200])
                continue
        wrong = provider in ("cuda", "unfused") and chosen != provider
        record(provider, eager, graph, f"dispatched to {chosen}" if wrong else "")
    del sets, copies
    torch.cuda.empty_cache()
    return records


def run_benchmarks(args: argparse.Namespace) -> list[dict[str, Any]]:
    ensure_kernels_loaded()
    for limit in ("cache_size_limit", "recompile_limit"):  # a compile per shape
        if hasattr(torch._dynamo.config, limit):
            setattr(torch._dynamo.config, limit, 4096)
    l2_bytes = torch.cuda.get_device_properties(0).L2_cache_size
    wanted = [o for o in args.ops.split(",") if o] if args.ops else None
    op_list = [
        op
        for name, op in IrOp.registry.items()
        if "cuda" in op.impls and (wanted is None or name in wanted)
    ]
    if wanted is not None and len(op_list) != len(wanted):
        known = [name for name, op in IrOp.registry.items() if "cuda" in op.impls]
        raise SystemExit(f"--ops {args.ops}: ops with a cuda provider are {', '.join(known)}")
    records: list[dict[str, Any]] = []
    for op in op_list:
        for hidden in args.hidden:
            for tokens in args.tokens:
                found = measure_op(op, tokens, hidden, args.compile_mode, args.repeats, l2_bytes)
                records += found
                line = ", ".join(f"{r['provider']} {r['us_eager']:.2f}" for r in found)
                print(f"{op.name} {tokens}x{hidden}: {line} (us eager)", flush=True)
    return records


def environment(compile_mode: str) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(0)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "gpu": torch.cuda.get_device_name(0),
        "l2_mb": props.L2_cache_size / 2**20,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "compile_mode": compile_mode,
        "liger": _liger_version(),
    }


def _liger_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("liger-kernel")
    except Exception:
        return None


# -- reporting ----------------------------------------------------------------------------------


def _key(r: dict[str, Any]) -> tuple[str, int, int]:
    return r["op"], r["hidden"], r["tokens"]


def compared_us(r: dict[str, Any]) -> float:
    """The time targets use: the CUDA-graph replay up to 256 tokens, eager above."""
    if r["tokens"] <= GRAPH_MAX_TOKENS and r.get("us_graph") is not None:
        return float(r["us_graph"])
    return float(r["us_eager"])


def tbps(r: dict[str, Any], us: float | None) -> float:
    return r["bytes"] / (us * 1e-6) / 1e12 if us and not math.isnan(us) else math.nan


def _index(records: Sequence[dict[str, Any]]) -> dict[tuple[str, int, int], dict[str, Any]]:
    table: dict[tuple[str, int, int], dict[str, Any]] = {}
    for r in records:
        table.setdefault(_key(r), {})[r["provider"]] = r
    return table


def verdicts(records: Sequence[dict[str, Any]]) -> list[tuple[bool, str]]:
    """Each target of the issue checked against the measurements: (met, sentence)."""
    out: list[tuple[bool, str]] = []
    for (op, hidden, tokens), by in sorted(_index(records).items()):
        cuda = by.get("cuda")
        if cuda is None or math.isnan(cuda["us_eager"]):
            continue
        mine = compared_us(cuda)
        shape = f"{op} {tokens}x{hidden}"
        if op in CEILING_OPS and tokens >= 4096 and "copy" in by:
            share = compared_us(by["copy"]) / mine
            out.append(
                (
                    share >= CEILING_SHARE,
                    f"{shape}: {share:.1%} of the copy ceiling "
                    f"({tbps(cuda, mine):.2f} of {tbps(by['copy'], compared_us(by['copy'])):.2f} "
                    f"TB/s); target {CEILING_SHARE:.0%}",
                )
            )
        if "compile" in by and not math.isnan(by["compile"]["us_eager"]):
            compiled = compared_us(by["compile"])
            speedup = compiled / mine
            wanted = COMPILE_SPEEDUP if 256 <= tokens <= 4096 else 1.0
            sentence = (
                f"{shape}: {speedup:.2f}x torch.compile ({mine:.2f} vs {compiled:.2f} us); "
                f"target {wanted:.2f}x"
            )
            floor = _ceiling_us(by)
            if speedup < wanted and floor is not None and compiled / floor < wanted:
                sentence += (
                    f" (beyond the ceiling: moving these bytes takes {floor:.2f} us, so at most "
                    f"{compiled / floor:.2f}x is possible)"
                )
            out.append((speedup >= wanted, sentence))
        if tokens <= 64 and hidden == 4096 and cuda.get("us_graph") is not None:
            out.append(
                (
                    cuda["us_graph"] <= DECODE_US,
                    f"{shape}: {cuda['us_graph']:.2f} us per call in a CUDA graph; target "
                    f"{DECODE_US} us",
                )
            )
        if op == FUSED_QUANT_OP and tokens == 4096 and hidden == 4096 and "unfused" in by:
            speedup = compared_us(by["unfused"]) / mine
            out.append(
                (
                    speedup >= FUSED_QUANT_SPEEDUP,
                    f"{shape}: {speedup:.2f}x its unfused kernels; target {FUSED_QUANT_SPEEDUP}x",
                )
            )
    return out


def _ceiling_us(by: dict[str, dict[str, Any]]) -> float | None:
    """The fastest way measured to move a shape's bytes: ``copy`` or ``copy_kernel``."""
    times = [
        compared_us(by[p])
        for p in ("copy", "copy_kernel")
        if p in by and not math.isnan(compared_us(by[p]))
    ]
    return min(times) if times else None


def _cell(r: dict[str, Any] | None, field: str) -> str:
    if r is None:
        return ""
    us = r.get(field)
    if us is None or (isinstance(us, float) and math.isnan(us)):
        return "failed" if field == "us_eager" else ""
    return f"{us:.2f} ({tbps(r, us):.2f})"


def markdown(records: Sequence[dict[str, Any]], env: dict[str, Any], plot: str | None) -> str:
    lines = [
        "# ir-kernels-cuda benchmark results",
        "",
        f"- date: {env['date']}",
        f"- GPU: {env['gpu']} (L2 {env['l2_mb']:.0f} MiB)",
        f"- torch {env['torch']} (CUDA {env['cuda']}), Triton {env['triton']}",
        f"- torch.compile: Inductor, mode `{env['compile_mode']}`, static shapes",
        f"- Liger-Kernel: {env['liger'] or 'not installed (no liger column)'}",
        "",
        "Produced by `benchmarks/bench_ops.py` (its docstring says how it measures). Cells are "
        "`us per call (effective TB/s)`; bytes are every input and output tensor. `graph` "
        f"columns: replays of a CUDA graph, measured up to {GRAPH_MAX_TOKENS} tokens and used "
        "by the targets there; eager times are used above.",
        "",
    ]
    index = _index(records)
    providers = [p for p in PROVIDERS if any(p in by for by in index.values())]
    for op in sorted({k[0] for k in index}):
        lines += [f"## {op}", ""]
        header = ["tokens x hidden", "MB"]
        for p in providers:
            header += [p, f"{p} graph"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for key in sorted(k for k in index if k[0] == op):
            by = index[key]
            any_record = next(iter(by.values()))
            row = [f"{key[2]} x {key[1]}", f"{any_record['bytes'] / 1e6:.3g}"]
            for p in providers:
                row += [_cell(by.get(p), "us_eager"), _cell(by.get(p), "us_graph")]
            lines.append("| " + " | ".join(row) + " |")
        notes = [f"{r['provider']} {r['tokens']}x{r['hidden']}: {r['note']}"
                 for r in records if r["op"] == op and r.get("note")]  # fmt: skip
        lines += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    checks = verdicts(records)
    missed = [s for ok, s in checks if not ok]
    beyond = sum("beyond the ceiling" in s for s in missed)
    lines += [
        "## Targets",
        "",
        f"{len(checks) - len(missed)} of {len(checks)} checks met."
        + (
            f" {beyond} of the missed ones ask for more than the copy ceiling allows (said "
            "there, with the numbers)."
            if beyond
            else ""
        ),
        "",
    ]
    lines += [f"- {'met' if ok else '**MISSED**'}: {s}" for ok, s in checks]
    if plot:
        lines += ["", f"![TB/s against tokens per provider]({plot})", ""]
    return "\n".join(lines) + "\n"


def write_plot(records: Sequence[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (run --report later where it is)")
        return False
    index = _index(records)
    panels = sorted({(k[0], k[1]) for k in index})
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(8, 3.2 * len(panels)), squeeze=False, sharex=True
    )
    for ax, (op, hidden) in zip(axes[:, 0], panels, strict=True):
        keys = sorted(k for k in index if k[:2] == (op, hidden))
        for provider in PROVIDERS:
            points = [
                (k[2], tbps(index[k][provider], compared_us(index[k][provider])))
                for k in keys
                if provider in index[k]
            ]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=provider)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{op}, hidden {hidden}, bf16")
        ax.set_ylabel("TB/s")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel(f"tokens (CUDA-graph replays up to {GRAPH_MAX_TOKENS})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def report(records: list[dict[str, Any]], env: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plot = "throughput.png" if write_plot(records, out / "throughput.png") else None
    (out / "RESULTS.md").write_text(markdown(records, env, plot))
    for ok, sentence in verdicts(records):
        if not ok:
            print("MISSED:", sentence)
    print(f"wrote {out / 'RESULTS.md'}" + (f" and {out / plot}" if plot else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--ops", help="comma-separated op names (default: every cuda op)")
    parser.add_argument("--tokens", type=int, nargs="+", default=list(TOKENS))
    parser.add_argument("--hidden", type=int, nargs="+", default=list(HIDDEN))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--compile-mode",
        default="default",
        help="torch.compile mode for the native function, or 'none' to skip it",
    )
    parser.add_argument("--quick", action="store_true", help="tokens 1, 256, 4096; hidden 4096")
    parser.add_argument("--report", type=Path, nargs="+", help="results.json files to report")
    args = parser.parse_args()
    if args.report:
        records: list[dict[str, Any]] = []
        env: dict[str, Any] = {}
        for path in args.report:
            saved = json.loads(path.read_text())
            records += saved["records"]
            env = env or saved["environment"]
        report(records, env, args.out)
        return
    if args.quick:
        args.tokens, args.hidden = [1, 256, 4096], [4096]
    records = run_benchmarks(args)
    env = environment(args.compile_mode)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps({"environment": env, "records": records}, indent=1)
    )
    report(records, env, args.out)


if __name__ == "__main__":
    main()
