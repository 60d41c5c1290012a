"""Start-up: ``import ir_op`` does not import ``torch._dynamo``.

Dynamo (with the Inductor and sympy modules it pulls in) is over a second of a serving process's
start, spent for eager users who never compile. ir-op needs it only once something compiles,
and by then torch has imported it. Each check runs in a fresh interpreter, since this test
process has long imported everything.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch


def _heavy_modules_after_each(steps: list[str], **env: str) -> list[set[str]]:
    """For each step of code run in turn in a fresh interpreter: the heavy torch modules loaded
    once it ran."""
    lines = ["import sys", "HEAVY = ('torch._dynamo', 'torch._inductor')"]
    for step in steps:
        lines += [step, "print(' '.join(m for m in HEAVY if m in sys.modules) + '|')"]
    result = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [set(line.rstrip("|").split()) for line in result.stdout.splitlines()]


def test_importing_ir_op_does_not_import_dynamo() -> None:
    steps = [
        "import torch",
        "import ir_op",
        "from ir_op import ops",
        "import ir_op.cli, ir_op.explain, ir_op.priority, ir_op.testing",
    ]
    assert _heavy_modules_after_each(steps) == [set()] * len(steps)


def test_an_eager_call_does_not_import_dynamo() -> None:
    """Eager calls on the CPU, wrap on and off, inside a block and out, without kernel sets.

    Kernel sets are left out: a Triton kernel set defines ``torch.library.triton_op`` operators
    when it loads, and torch imports Inductor (hence Dynamo) for those.
    """
    steps = [
        "import torch\nfrom ir_op import enable_torch_wrap, ops\n"
        "x, w = torch.randn(2, 8), torch.ones(8)",
        "ops.rms_norm(x, w, 1e-6)",
        "with enable_torch_wrap(False), ops.rms_norm.set_priority(['native']):\n"
        "    ops.fused_add_rms_norm(x, x.clone(), w, 1e-6)\n    ops.rms_norm(x, w, 1e-6)",
    ]
    found = _heavy_modules_after_each(steps, IR_OP_DISABLE_PLUGINS="1", IR_OP_PLATFORM="cpu")
    assert found == [set()] * len(steps)


def test_the_trace_time_defaults_are_marked_as_torch_marks_constant_results() -> None:
    """ir-op marks its trace-time defaults function for Dynamo without importing Dynamo; the
    mark must stay the one ``torch.compiler.assume_constant_result`` sets."""
    from ir_op.context import assume_constant_result, current_overrides
    from ir_op.op import _default_providers_while_tracing

    def by_torch() -> int:
        return 0

    def by_ir_op() -> int:
        return 0

    torch.compiler.assume_constant_result(by_torch)  # type: ignore[no-untyped-call]
    assume_constant_result(by_ir_op)
    assert vars(by_torch) == vars(by_ir_op) != {}
    assert vars(_default_providers_while_tracing) == vars(by_torch)
    assert vars(current_overrides) == vars(by_torch)
