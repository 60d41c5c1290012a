"""Cold compile time of a 32-layer model with LayerName against plain strings, through Inductor.

    python packages/ir-layername/benchmarks/compile_time.py [--layers 32] [--repeats 3] [--write]

Each measurement runs in a fresh interpreter with an empty Inductor cache directory and the
FX-graph and AOTAutograd caches off, so nothing compiled before can be reused. In it, Inductor
first compiles an unrelated one-line function (the one-time start-up cost every process pays),
then the clock runs over the first call of ``torch.compile(DecoderStack(...))``: Dynamo,
AOTAutograd, Inductor lowering, code generation and the C++ compiler. The two variants alternate,
``--repeats`` times each; the ratio is of the medians, measured in one run of this script.
``--write`` records the result for the installed torch in ``RESULTS.md`` next to this file.

Where stock Inductor needs ir-compile's fix for hoisted opaque arguments (torch 2.13 and 2.15),
ir-compile must be installed; the fix is installed in the child when available.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
VARIANTS = ("layername", "str")


def child(variant: str, num_layers: int) -> None:
    import torch

    import ir_layername
    from ir_layername.testing import DecoderStack, inductor_layer_lowerings

    patches = "not installed"
    try:
        from ir_compile.inductor_patches import opaque
    except ImportError:
        opaque = None
    if opaque is not None:
        status = opaque.install()
        patches = json.dumps(status.__dict__)
    torch.compile(lambda t: torch.relu(t) + 1)(torch.randn(8))  # one-time Inductor start-up

    model = DecoderStack(num_layers, plain_strings=variant == "str")
    x = torch.randn(16, 32)
    expected = model(x)
    compiled = torch.compile(model, fullgraph=True)
    with inductor_layer_lowerings() as lowered:
        start = time.perf_counter()
        out = compiled(x)
        seconds = time.perf_counter() - start
    torch.testing.assert_close(out, expected)
    print(
        json.dumps(
            {
                "variant": variant,
                "seconds": seconds,
                "layer_bodies_compiled": len(lowered),
                "use_layername": ir_layername.USE_LAYERNAME,
                "torch": torch.__version__,
                "patches": patches,
            }
        )
    )


def measure(variant: str, num_layers: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="ir-layername-bench-") as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "TRITON_CACHE_DIR": cache}
        result = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--layers", str(num_layers)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"the {variant} run failed:\n{result.stderr[-4000:]}")
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def write_results(markdown: str, torch_version: str) -> None:
    begin, end = f"<!-- torch {torch_version} -->", f"<!-- /torch {torch_version} -->"
    block = f"{begin}\n{markdown}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Compile-time results\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"record the result in {RESULTS}")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.layers)
        return

    runs: dict[str, list[dict[str, object]]] = {variant: [] for variant in VARIANTS}
    for repeat in range(args.repeats):
        order = VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            runs[variant].append(measure(variant, args.layers))
    first = runs["layername"][0]
    if not first["use_layername"]:
        print(f"LayerName is not hoisted with torch {first['torch']}: nothing to compare")
    median = {v: statistics.median(float(str(r["seconds"])) for r in runs[v]) for v in VARIANTS}
    ratio = median["str"] / median["layername"]
    samples = {v: ", ".join(f"{float(str(r['seconds'])):.2f}" for r in runs[v]) for v in VARIANTS}
    bodies = {v: runs[v][0]["layer_bodies_compiled"] for v in VARIANTS}
    markdown = "\n".join(
        [
            f"## torch {first['torch']}, {args.layers} layers",
            "",
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs "
            f"({platform.processor() or platform.platform()}), Python "
            f"{platform.python_version()}. ir-compile opaque patches: {first['patches']}.",
            "",
            "| layer names | layer bodies compiled | cold compile, s (median) | samples, s |",
            "|---|---|---|---|",
            f"| `LayerName` | {bodies['layername']} | {median['layername']:.2f} "
            f"| {samples['layername']} |",
            f"| `str` | {bodies['str']} | {median['str']:.2f} | {samples['str']} |",
            "",
            f"**Ratio (str / LayerName): {ratio:.2f}x**, measured in one run "
            f"({args.repeats} alternating cold runs per variant).",
        ]
    )
    print(markdown)
    if args.write:
        write_results(markdown, str(first["torch"]))


if __name__ == "__main__":
    main()
