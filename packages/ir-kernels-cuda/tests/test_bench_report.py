"""The benchmark report: bytes counted, targets judged, tables written (no GPU needed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from ir_kernels_cuda._support import PROVIDED_OPS
from ir_op import IrOp

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ops.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_ops", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_ops"] = module
    spec.loader.exec_module(module)
    return module


def rec(op: str, tokens: int, provider: str, eager: float, graph: float | None = None) -> Any:
    return {
        "op": op,
        "tokens": tokens,
        "hidden": 4096,
        "bytes": 4 * tokens * 4096 * 2,
        "provider": provider,
        "us_eager": eager,
        "us_graph": graph,
        "note": "",
    }


ENV = {
    "date": "2026-11-22 10:00 UTC",
    "gpu": "NVIDIA H100 80GB HBM3",
    "l2_mb": 50.0,
    "torch": "2.11.0",
    "triton": "3.6.0",
    "cuda": "13.0",
    "compile_mode": "default",
    "liger": None,
}


def test_bytes_moved_counts_inputs_and_outputs(bench: ModuleType) -> None:
    x, r, w = torch.empty(3, 8), torch.empty(3, 8), torch.empty(8, dtype=torch.bfloat16)
    outputs = (torch.empty(3, 8), torch.empty(3, 8))
    assert bench.bytes_moved((x, r, w, 1e-6, None), outputs) == 4 * 24 * 4 + 16


def test_bytes_moved_counts_the_gathered_rows_of_rotarys_cache(bench: ModuleType) -> None:
    from ir_op import ops

    args = ops.rotary_embedding.generate_inputs(
        num_tokens=3, hidden_size=256, dtype=torch.bfloat16, max_position=100
    )  # positions [3] int64, query [3, 256], key [3, 128] (heads of 128), cache [100, 128]
    outputs = ops.rotary_embedding.native_fn(*args)
    assert bench.bytes_moved(args, outputs, "rotary_embedding") == (
        3 * 8 + 2 * (3 * 256 + 3 * 128) * 2 + 3 * 128 * 2
    )
    assert bench.bytes_moved(args, outputs) == 3 * 8 + 2 * (3 * 384) * 2 + 100 * 128 * 2


@pytest.mark.parametrize("name", PROVIDED_OPS)
def test_every_cuda_op_can_be_benchmarked(bench: ModuleType, name: str) -> None:
    """bench_ops.py measures every op with a cuda provider: each makes its inputs with the
    benchmark's arguments and has bytes to count (the GPU run does the rest)."""
    op = IrOp.registry[name]
    args = op.generate_inputs(num_tokens=3, hidden_size=256, dtype=torch.bfloat16, device="cpu")
    assert bench.bytes_moved(args, op.native_fn(*args), name) > 3 * 256


def test_rotation_spans_twice_the_l2(bench: ModuleType) -> None:
    assert bench._rotation(8 * 2**20, 50 * 2**20) == 13
    assert bench._rotation(2**30, 50 * 2**20) == 1
    assert bench._rotation(10, 50 * 2**20) == 64


def test_targets_are_judged(bench: ModuleType) -> None:
    records = [
        rec("rms_norm", 4096, "copy", 10.0),
        rec("rms_norm", 4096, "cuda", 10.2),  # 98% of the ceiling: met
        rec("rms_norm", 4096, "compile", 12.0),  # 1.18x: met
        rec("fused_add_rms_norm", 4096, "copy", 10.0),
        rec("fused_add_rms_norm", 4096, "cuda", 11.0),  # 91%: missed
        rec("fused_add_rms_norm", 4096, "compile", 11.5),  # 1.05x < 1.10: missed
        rec("rms_norm", 16, "copy", 5.0, 1.0),
        rec("rms_norm", 16, "cuda", 6.0, 1.5),  # decode in a graph: 1.5 us, met
        rec("rms_norm", 16, "compile", 9.0, 1.4),  # faster in a graph: missed (>= 1.0)
    ]
    checks = bench.verdicts(records)
    assert len(checks) == 6, checks
    assert sum(ok for ok, _ in checks) == 3, checks
    missed = [s for ok, s in checks if not ok]
    assert any("fused_add_rms_norm 4096x4096: 90.9% of the copy ceiling" in s for s in missed)
    assert any("fused_add_rms_norm 4096x4096: 1.05x torch.compile" in s for s in missed)
    assert any("rms_norm 16x4096: 0.93x torch.compile" in s for s in missed)
    assert not any("beyond the ceiling" in s for s in missed)


def test_speedups_beyond_the_copy_ceiling_are_called_so(bench: ModuleType) -> None:
    records = [
        rec("rms_norm", 1024, "copy", 10.0),
        rec("rms_norm", 1024, "copy_kernel", 9.5),
        rec("rms_norm", 1024, "cuda", 9.8),
        rec("rms_norm", 1024, "compile", 10.0),  # 1.02x; the ceiling allows 1.05x at most
        rec("rms_norm", 2048, "copy", 10.0),
        rec("rms_norm", 2048, "cuda", 10.0),
        rec("rms_norm", 2048, "compile", 10.5),  # 1.05x, but 1.05x is all the copy allows
    ]
    checks = bench.verdicts(records)
    missed = [s for ok, s in checks if not ok]
    assert any(
        "rms_norm 1024x4096: 1.02x torch.compile" in s
        and "moving these bytes takes 9.50 us, so at most 1.05x is possible" in s
        for s in missed
    ), missed
    assert sum("beyond the ceiling" in s for s in missed) == 2, missed


def test_report_writes_results(bench: ModuleType, tmp_path: Path) -> None:
    records = [rec("rms_norm", 4096, "copy", 10.0), rec("rms_norm", 4096, "cuda", 10.2)]
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps({"environment": ENV, "records": records}))
    bench.report(json.loads(saved.read_text())["records"], ENV, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "- GPU: NVIDIA H100 80GB HBM3 (L2 50 MiB)" in text
    assert "- torch 2.11.0 (CUDA 13.0), Triton 3.6.0" in text
    assert "| 4096 x 4096 | 134 | 10.00 (13.42) |  | 10.20 (13.16) |  |" in text
    assert "1 of 1 checks met." in text
