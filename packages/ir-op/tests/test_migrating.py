"""MIGRATING.md stays true: every ```python block of the guide runs, on the CPU, and passes.

Each block is a complete program with its own assertions, and each runs in a process of its own,
since blocks set process-wide state (priorities, the torch wrap flag, ``IR_OP_PLATFORM``) and
define operators, which torch cannot undefine. Importing ir-op takes seconds, so one runner
process imports torch and ``ir_op`` (nothing else: no platform is resolved, no kernel set loaded)
and forks a child per block. The environment variables that would change what the blocks see are
removed, so every op runs its ``native`` provider. A block whose first line is
``# requires: a, b`` is skipped where one of those modules cannot be found (ir-op's tests also run
without ir-compile, ir-layername or a kernel set).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]
GUIDE = PACKAGE / "MIGRATING.md"
ROOT_README = PACKAGE.parents[1] / "README.md"

_FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_REQUIRES = re.compile(r"#\s*requires:\s*(.+)")
_ENV_REMOVED = (
    "IR_OP_PLATFORM",
    "IR_OP_PRIORITY",
    "IR_OP_DISABLE_PLUGINS",
    "IR_USE_LAYERNAME",
    "TRITON_INTERPRET",
)

# Reads [[name, code], ...] as JSON on stdin; writes {name: [exit status, output]} as JSON.
_RUNNER = r"""
import json, os, sys, tempfile, traceback
import torch, ir_op

blocks = json.load(sys.stdin)
results = {}
for name, code in blocks:
    with tempfile.TemporaryFile(mode="w+") as log:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            status = 0
            try:
                exec(compile(code, name, "exec"), {"__name__": "__main__"})
            except BaseException:
                traceback.print_exc()
                status = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
        log.seek(0)
        results[name] = [os.waitstatus_to_exitcode(wait_status), log.read()]
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Block:
    line: int
    code: str

    @property
    def name(self) -> str:
        return f"MIGRATING.md:{self.line}"

    @property
    def requires(self) -> list[str]:
        first = self.code.split("\n", 1)[0]
        found = _REQUIRES.fullmatch(first.strip())
        return [m.strip() for m in found.group(1).split(",")] if found else []

    def missing(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown text, with the line each one's code starts on."""
    return [Block(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _FENCE.finditer(text)]


def run_blocks(blocks: list[Block]) -> dict[str, tuple[int, str]]:
    """Run each block in a process of its own; ``{block name: (exit status, output)}``."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_REMOVED}
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps([[b.name, b.code] for b in blocks]),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"the runner failed:\n{result.stdout}\n{result.stderr}"
    found: dict[str, list[object]] = json.loads(result.stdout.strip().splitlines()[-1])
    return {name: (int(str(status)), str(out)) for name, (status, out) in found.items()}


BLOCKS = python_blocks(GUIDE.read_text())


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[int, str]]:
    if not hasattr(os, "fork"):
        pytest.skip("the runner forks a process per block")
    return run_blocks([b for b in BLOCKS if not b.missing()])


def test_guide_has_its_examples() -> None:
    # One runnable block per section that has an "after" program; a lost fence drops one.
    assert len(BLOCKS) >= 12, [b.line for b in BLOCKS]


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line{b.line}" for b in BLOCKS])
def test_guide_block_runs(block: Block, results: dict[str, tuple[int, str]]) -> None:
    missing = block.missing()
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    status, output = results[block.name]
    assert status == 0, f"{block.name} failed:\n{output}"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the runner forks a process per block")
def test_runner_reports_each_block() -> None:
    # The harness itself must be able to fail, and blocks must not see each other's state.
    text = (
        "```python\nraise ValueError('x')\n```\n"
        "```python\nimport os\nos.environ['IR_OP_PRIORITY'] = 'x'\n```\n"
        "```python\nimport os\nassert 'IR_OP_PRIORITY' not in os.environ\n```\n"
    )
    blocks = python_blocks(text)
    assert [b.line for b in blocks] == [2, 5, 9]
    outcome = run_blocks(blocks)
    assert outcome[blocks[0].name][0] != 0 and "ValueError" in outcome[blocks[0].name][1]
    assert outcome[blocks[1].name][0] == 0
    assert outcome[blocks[2].name][0] == 0, outcome[blocks[2].name][1]


def test_requires_line_is_read() -> None:
    (block,) = python_blocks("```python\n# requires: ir_compile, ir_layername\npass\n```\n")
    assert block.requires == ["ir_compile", "ir_layername"]
    (plain,) = python_blocks("```python\nimport torch\n```\n")
    assert plain.requires == []


@pytest.mark.parametrize("readme", [PACKAGE / "README.md", ROOT_README], ids=["ir-op", "root"])
def test_readme_links_the_guide(readme: Path) -> None:
    target = "MIGRATING.md" if readme.parent == PACKAGE else "packages/ir-op/MIGRATING.md"
    assert f"]({target})" in readme.read_text()
