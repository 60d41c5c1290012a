"""Hugging Face models, stock against ``ir_op.transformers.kernelize`` (and Liger, compiled).

    python packages/ir-op/benchmarks/hf_models.py [--out results.json] [--models llama,qwen3]
        [--shapes prefill,decode] [--variants a,b,...] [--layers 4]
    python packages/ir-op/benchmarks/hf_models.py --tiny      # a smoke run on the CPU

Models: random-weight Llama-3-8B- and Qwen3-8B-shaped decoders (hidden 4096, 32 heads, 8 KV
heads, head_dim 128, intermediate 14336 / 12288, their vocabularies) with ``--layers`` layers
(default 4), bfloat16, ``attn_implementation="sdpa"``. Shapes: ``prefill`` is one sequence of
1024 tokens, ``decode`` 32 sequences of one token; no KV cache (``use_cache=False``), logits of
the last position only (``logits_to_keep=1``, what generation computes).

Variants, measured in the same run on the same weights (the order keeps global patches last):

- ``stock_eager``: transformers as it is: the baseline of every speedup;
- ``kernelized_eager``: after ``kernelize(model)``, torch wrap on (each op through
  ``torch.ops.ir``); ``kernelized_eager_nowrap``: the same with torch wrap off (the op
  dispatches in Python, saving the dispatcher's ~2 µs per call);
- ``stock_compiled`` / ``stock_compiled_ro``: ``torch.compile`` (Inductor), mode ``default`` /
  ``reduce-overhead`` (CUDA graphs);
- ``kernelized_compiled`` / ``kernelized_compiled_ro``: kernelized, compiled with
  ``ir_compile.backend()`` (``mode="reduce-overhead"`` where ``ir_compile.backend`` takes a
  ``mode``; the row says why it is missing otherwise);
- ``liger_eager``: Liger-Kernel's ``apply_liger_kernel_to_llama`` / ``_qwen3`` (RMSNorm, SwiGLU,
  RoPE), when ``liger_kernel`` imports. Liger patches transformers' modules for the whole
  process, so it runs last for each model, on a model built after the patch.

Timing: CUDA events around ``--iters`` forwards under ``torch.inference_mode``, after
``--warmup`` forwards (compiled variants compile in their warmup), median of ``--repeats``; on
the CPU (``--tiny``) ``time.perf_counter``. Also measured: the peak memory that ``kernelize``
allocates above the model (the fused gate-and-up weight is built one MLP at a time, so the peak
is one MLP's gate and up weights) and what it keeps (nothing: the fused weight *is* the
parameters' storage).

Prints a table and writes JSON (``--out``, default ``hf_models.json`` here) with the date, GPU,
torch, Triton and transformers versions.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib
import inspect
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

HERE = Path(__file__).resolve().parent

MODELS: dict[str, dict[str, Any]] = {
    "llama": {
        "config": "LlamaConfig",
        "model": "LlamaForCausalLM",
        "liger": "apply_liger_kernel_to_llama",
        "kwargs": {
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "vocab_size": 128256,
            "rms_norm_eps": 1e-5,
            "max_position_embeddings": 8192,
            "rope_theta": 500000.0,
        },
    },
    "qwen3": {
        "config": "Qwen3Config",
        "model": "Qwen3ForCausalLM",
        "liger": "apply_liger_kernel_to_qwen3",
        "kwargs": {
            "hidden_size": 4096,
            "intermediate_size": 12288,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "vocab_size": 151936,
            "rms_norm_eps": 1e-6,
            "max_position_embeddings": 8192,
            "rope_theta": 1000000.0,
        },
    },
}
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": 256,
    "max_position_embeddings": 256,
}
SHAPES = {"prefill": (1, 1024), "decode": (32, 1)}
TINY_SHAPES = {"prefill": (1, 64), "decode": (4, 1)}
VARIANTS = (
    "stock_eager",
    "stock_compiled",
    "stock_compiled_ro",
    "kernelized_eager",
    "kernelized_eager_nowrap",
    "kernelized_compiled",
    "kernelized_compiled_ro",
    "liger_eager",
)


def build_model(name: str, layers: int, tiny: bool, device: str, dtype: torch.dtype) -> nn.Module:
    import transformers

    spec = MODELS[name]
    kwargs = dict(spec["kwargs"])
    if tiny:
        kwargs.update(TINY)
    config = getattr(transformers, spec["config"])(
        **kwargs, num_hidden_layers=layers, attn_implementation="sdpa"
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = getattr(transformers, spec["model"])(config)
    model = model.to(dtype).eval()
    with torch.no_grad():  # norms start at ones: random weights exercise them
        for module in model.modules():
            weight = getattr(module, "weight", None)
            if isinstance(weight, nn.Parameter) and weight.dim() == 1:
                weight.normal_(1.0, 0.1)
    return model


class Timer:
    """Median time per forward: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device: str, warmup: int, iters: int, repeats: int) -> None:
        self.device, self.warmup, self.iters, self.repeats = device, warmup, iters, repeats

    def __call__(self, fn: Callable[[], object]) -> float:
        for _ in range(self.warmup):
            fn()
        self._sync()
        samples = []
        for _ in range(self.repeats):
            if self.device == "cuda":
                start, end = (
                    torch.cuda.Event(enable_timing=True),
                    torch.cuda.Event(enable_timing=True),
                )
                start.record()
                for _ in range(self.iters):
                    fn()
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end) / self.iters)
            else:
                t0 = time.perf_counter()
                for _ in range(self.iters):
                    fn()
                samples.append((time.perf_counter() - t0) * 1e3 / self.iters)
        return statistics.median(samples)

    def _sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()


def forward_fn(model: Callable[..., Any], ids: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.inference_mode():
            return model(input_ids=ids, use_cache=False, logits_to_keep=1).logits

    return run


def compiled(model: nn.Module, kernelized: bool, reduce_overhead: bool) -> Callable[..., Any]:
    """``torch.compile`` of ``model``; raises ``RuntimeError`` naming why a variant is absent."""
    torch._dynamo.reset()
    mode = "reduce-overhead" if reduce_overhead else None
    if not kernelized:
        return torch.compile(model, mode=mode, dynamic=False)
    import ir_compile

    if reduce_overhead:
        if "mode" not in inspect.signature(ir_compile.backend).parameters:
            raise RuntimeError("ir_compile.backend() takes no mode here")
        backend = ir_compile.backend(mode="reduce-overhead")  # type: ignore[call-arg]
    else:
        backend = ir_compile.backend()
    return torch.compile(model, backend=backend, dynamic=False)


def kernelize_memory(model: nn.Module, device: str) -> dict[str, Any]:
    """Run ``kernelize`` and measure what it allocates (peak above, and kept after)."""
    from ir_op.transformers import kernelize

    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    report = kernelize(model)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {
        "seconds": seconds,
        "replaced": len(report.replaced),
        "skipped": dict(report.skipped),
    }
    if device == "cuda":
        torch.cuda.synchronize()
        out["peak_above_model_mib"] = (torch.cuda.max_memory_allocated() - before) / 2**20
        out["kept_mib"] = (torch.cuda.memory_allocated() - before) / 2**20
        mlp = next(m for m in model.modules() if "_ir_gate_up_weight" in m.__dict__)
        fused = mlp.__dict__["_ir_gate_up_weight"]
        out["one_mlp_gate_up_mib"] = fused.numel() * fused.element_size() / 2**20
    return out


Record = Callable[[str, Callable[[torch.Tensor], Callable[[], object]]], None]


def _measure_ours(
    model: nn.Module, variants: list[str], record: Record, device: str
) -> dict[str, Any]:
    """Stock variants, then kernelize (measured) and the kernelized variants, on one model."""
    from ir_op import enable_torch_wrap

    if "stock_eager" in variants:
        record("stock_eager", lambda ids: forward_fn(model, ids))
    for variant, ro in (("stock_compiled", False), ("stock_compiled_ro", True)):
        if variant in variants:
            record(variant, lambda ids, ro=ro: forward_fn(compiled(model, False, ro), ids))
    memory = kernelize_memory(model, device)
    if "kernelized_eager" in variants:
        record("kernelized_eager", lambda ids: forward_fn(model, ids))
    if "kernelized_eager_nowrap" in variants:

        def nowrap(ids: torch.Tensor) -> Callable[[], object]:
            inner = forward_fn(model, ids)

            def run() -> object:
                with enable_torch_wrap(False):
                    return inner()

            return run

        record("kernelized_eager_nowrap", nowrap)
    for variant, ro in (("kernelized_compiled", False), ("kernelized_compiled_ro", True)):
        if variant in variants:
            record(variant, lambda ids, ro=ro: forward_fn(compiled(model, True, ro), ids))
    return memory


def measure_model(
    name: str, args: argparse.Namespace, device: str, timer: Timer
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    shapes = TINY_SHAPES if args.tiny else SHAPES
    chosen = [s for s in args.shapes.split(",") if s]
    variants = [v for v in args.variants.split(",") if v]
    rows: list[dict[str, Any]] = []
    inputs = {
        s: torch.randint(0, 256, shapes[s], device=device) for s in chosen
    }  # ids < 256 fit every vocabulary

    def record(variant: str, fn_for: Callable[[torch.Tensor], Callable[[], object]]) -> None:
        for shape in chosen:
            row: dict[str, Any] = {"model": name, "shape": shape, "variant": variant}
            try:
                row["ms"] = timer(fn_for(inputs[shape]))
            except Exception as error:  # a missing variant is a row that says why
                row["error"] = f"{type(error).__name__}: {error}"[:300]
            rows.append(row)
            print(_row_text(row), flush=True)

    memory = _measure_ours(
        build_model(name, args.layers, args.tiny, device, torch.bfloat16), variants, record, device
    )
    gc.collect()
    torch._dynamo.reset()
    if device == "cuda":
        torch.cuda.empty_cache()
    if "liger_eager" in variants:
        built: list[nn.Module] = []

        def liger(ids: torch.Tensor) -> Callable[[], object]:
            if not built:  # once for every shape: the patch is process-wide anyway
                module = importlib.import_module("liger_kernel.transformers")
                getattr(module, MODELS[name]["liger"])()
                built.append(build_model(name, args.layers, args.tiny, device, torch.bfloat16))
            return forward_fn(built[0], ids)

        record("liger_eager", liger)
    return rows, memory


def _row_text(row: dict[str, Any]) -> str:
    value = f"{row['ms']:9.3f} ms" if "ms" in row else f"  ({row['error']})"
    return f"{row['model']:6} {row['shape']:8} {row['variant']:24} {value}"


def table(rows: list[dict[str, Any]]) -> str:
    base = {(r["model"], r["shape"]): r["ms"] for r in rows if r["variant"] == "stock_eager"}
    lines = [
        "| model | shape | variant | ms | vs stock eager |",
        "|---|---|---|---:|---:|",
    ]
    for r in rows:
        if "ms" not in r:
            lines.append(f"| {r['model']} | {r['shape']} | {r['variant']} | - | {r['error']} |")
            continue
        ref = base.get((r["model"], r["shape"]))
        speedup = f"{ref / r['ms']:.2f}x" if ref else "-"
        lines.append(
            f"| {r['model']} | {r['shape']} | {r['variant']} | {r['ms']:.3f} | {speedup} |"
        )
    return "\n".join(lines)


def versions(device: str) -> dict[str, Any]:
    import transformers

    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    try:
        info["liger_kernel"] = importlib.metadata.version("liger-kernel")
    except importlib.metadata.PackageNotFoundError:
        info["liger_kernel"] = None
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", default="llama,qwen3", help=f"of {', '.join(MODELS)}")
    parser.add_argument("--shapes", default="prefill,decode", help=f"of {', '.join(SHAPES)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--tiny", action="store_true", help="tiny models on the CPU: checks the script runs"
    )
    parser.add_argument("--out", type=Path, default=HERE / "hf_models.json")
    args = parser.parse_args(argv)
    for label, given, known in (
        ("--models", args.models, MODELS),
        ("--shapes", args.shapes, SHAPES),
        ("--variants", args.variants, VARIANTS),
    ):
        unknown = [v for v in given.split(",") if v and v not in known]
        if unknown:
            parser.error(f"{label}: unknown {unknown[0]!r}; valid: {', '.join(known)}")
    if args.tiny:
        device = "cpu"
        args.layers, args.warmup, args.iters, args.repeats = 1, 1, 2, 1
    elif torch.cuda.is_available():
        device = "cuda"
    else:
        parser.error("no CUDA device: run with --tiny for a CPU smoke run")
    timer = Timer(device, args.warmup, args.iters, args.repeats)
    info = versions(device)
    print(json.dumps(info), flush=True)
    rows: list[dict[str, Any]] = []
    memory: dict[str, Any] = {}
    for name in [m for m in args.models.split(",") if m]:
        model_rows, memory[name] = measure_model(name, args, device, timer)
        rows += model_rows
    print(table(rows))
    print(json.dumps({"kernelize": memory}, indent=1))
    args.out.write_text(
        json.dumps({"info": info, "rows": rows, "kernelize": memory}, indent=1) + "\n"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
