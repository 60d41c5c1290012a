"""Repository-level checks: the README's commands, the import contracts, the layout."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "ir-op": "ir_op",
    "ir-triton": "ir_triton",
    "ir-layername": "ir_layername",
    "ir-compile": "ir_compile",
    "ir-kernels-cuda": "ir_kernels_cuda",
    "ir-kernels-rocm": "ir_kernels_rocm",
    "ir-kernels-xpu": "ir_kernels_xpu",
}


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    return [
        line.strip() for block in blocks for line in block.splitlines() if "/tmp/ir-tools" in line
    ]


def test_ci_runs_the_readme_test_command() -> None:
    commands = _readme_commands()
    assert len(commands) == 2, commands  # one sets up and runs ir-op info, one runs the tests
    assert commands[0].endswith("ir-op info")
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert commands[1] in ci_lines


def test_every_package_has_its_files() -> None:
    for folder, module in PACKAGES.items():
        base = ROOT / "packages" / folder
        for name in (
            "pyproject.toml",
            "README.md",
            "CHANGELOG.md",
            f"src/{module}/__init__.py",
            f"src/{module}/py.typed",
        ):
            assert (base / name).is_file(), f"{folder}: {name} missing"
        assert any((base / "tests").glob("test_*.py")), f"{folder}: no tests"


def _copy_sources(dest: Path) -> Path:
    src = dest / "src"
    for folder, module in PACKAGES.items():
        shutil.copytree(ROOT / "packages" / folder / "src" / module, src / module)
    return src


def _lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(src))
    lint = shutil.which("lint-imports")
    assert lint is not None, "import-linter is not installed"
    return subprocess.run(
        [lint, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        cwd=src.parent,
    )


def test_contracts_hold_on_the_real_sources(tmp_path: Path) -> None:
    result = _lint_imports(_copy_sources(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("ir_op", "import ir_compile", "ir-op imports no sibling package"),
        ("ir_op", "import ir_kernels_cuda", "ir-op imports no sibling package"),
        ("ir_op", "import ir_triton", "ir-op imports no sibling package"),
        ("ir_triton", "import ir_kernels_cuda", "ir-triton imports only ir-op"),
        ("ir_triton", "import ir_compile", "ir-triton imports only ir-op"),
        ("ir_layername", "import ir_op", "ir-layername imports no sibling package"),
        ("ir_kernels_cuda", "import ir_kernels_rocm", "kernel sets never import each other"),
        ("ir_kernels_xpu", "import ir_compile", "kernel sets never import ir-compile"),
        ("ir_compile", "import ir_kernels_cuda", "ir-compile reaches kernel sets only through"),
    ],
)
def test_a_planted_violation_breaks_its_contract(
    tmp_path: Path, module: str, planted: str, contract: str
) -> None:
    src = _copy_sources(tmp_path)
    (src / module / "_planted_violation.py").write_text(f"{planted}  # the edge under test\n")
    result = _lint_imports(src)
    assert result.returncode != 0
    assert contract in result.stdout
    assert "BROKEN" in result.stdout


def test_readme_install_from_a_checkout_names_real_packages() -> None:
    """README's install-from-a-checkout line (which install-alone runs) names package folders
    that exist, ir-op and one kernel set: the production profile."""
    lines = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("pip install ./packages/")
    ]
    assert len(lines) == 1, lines
    folders = lines[0].split()[2:]
    assert folders[0] == "./packages/ir-op", folders
    for folder in folders:
        assert (ROOT / folder / "pyproject.toml").is_file(), folder
    assert any(folder.startswith("./packages/ir-kernels-") for folder in folders), folders
