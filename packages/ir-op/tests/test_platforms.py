"""Platforms, emulation, and plugin discovery through real entry points."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch

from ir_op import platforms
from ir_op.testing import forced_platform


@pytest.mark.parametrize(
    ("name", "has_hardware"),
    [
        ("cpu", lambda: True),
        ("cuda", lambda: torch.cuda.is_available() and torch.version.hip is None),
        ("rocm", lambda: torch.cuda.is_available() and torch.version.hip is not None),
        ("xpu", lambda: hasattr(torch, "xpu") and torch.xpu.is_available()),
    ],
)
def test_forcing_a_platform_emulates_missing_hardware(name: str, has_hardware: object) -> None:
    with forced_platform(name) as platform:
        real = has_hardware()  # type: ignore[operator]
        assert platform.name == name
        assert platform.emulated == (not real)
        assert platforms.current_platform() is platform
        expected_device = "cpu" if platform.emulated else platform.device_type
        assert platform.tensor_device == expected_device
        assert ("emulated" in platform.describe()) == platform.emulated


def test_unknown_platform_lists_valid_names() -> None:
    with (
        pytest.raises(
            ValueError, match="IR_OP_PLATFORM='tpu' names no platform; valid: cpu, cuda, rocm, xpu"
        ),
        forced_platform("tpu"),
    ):
        pass
    # The failure left no half-resolved state behind.
    assert platforms.current_platform().name in platforms.builtin_platforms()


def test_default_priorities_per_platform() -> None:
    with forced_platform("cpu") as cpu:
        assert dict(cpu.get_default_ir_op_priority(compiling=False)) == {}
    with forced_platform("cuda") as cuda:
        eager = cuda.get_default_ir_op_priority(compiling=False)
        compiled = cuda.get_default_ir_op_priority(compiling=True)
        assert eager["rms_norm"] == ("cuda", "native")
        assert compiled["rms_norm"] == ("native",)


def test_rocm_eager_defaults_put_aiter_first_where_it_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AITER's provider before the rocm kernels when the ``aiter`` package can be found; under
    Inductor native (composite ops: unfused first) either way."""
    from ir_op.platforms import rocm

    with forced_platform("rocm") as platform:
        monkeypatch.setattr(rocm, "aiter_installed", lambda: True)
        assert platform.eager_providers() == ["aiter", "rocm", "native"]
        eager = platform.get_default_ir_op_priority(compiling=False)
        assert eager["rms_norm"] == ("aiter", "rocm", "native")
        assert eager["rms_norm_static_fp8_quant"] == ("aiter", "rocm", "unfused", "native")
        compiled = platform.get_default_ir_op_priority(compiling=True)
        assert compiled["rms_norm"] == ("native",)
        assert compiled["rms_norm_static_fp8_quant"] == ("unfused", "native")
        monkeypatch.setattr(rocm, "aiter_installed", lambda: False)
        assert platform.eager_providers() == ["rocm", "native"]
        assert platform.compile_providers() == ["native"]
        assert platform.get_default_ir_op_priority(compiling=False)["rms_norm"] == (
            "rocm",
            "native",
        )


def test_aiter_installed_finds_the_package_without_importing_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ir_op.platforms.rocm import aiter_installed

    monkeypatch.delitem(sys.modules, "aiter", raising=False)
    if importlib.util.find_spec("aiter") is None:
        assert not aiter_installed()
    (tmp_path / "aiter").mkdir()
    (tmp_path / "aiter" / "__init__.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert aiter_installed()
    assert "aiter" not in sys.modules
    spec_less = types.ModuleType("aiter")  # a module put in sys.modules by hand has no spec
    monkeypatch.setitem(sys.modules, "aiter", spec_less)
    assert aiter_installed()


def _write_distribution(
    site: Path, name: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str]
) -> None:
    """Install a distribution the way an installer would: files plus a .dist-info folder."""
    dist_info = site / f"{name.replace('-', '_')}-1.2.3.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in entries.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (dist_info / "RECORD").write_text("")
    for module, source in modules.items():
        path = site / module.replace(".", "/") / "__init__.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


GOOD_KERNEL_SET = """
    from torch import Tensor

    from ir_op import ops


    @ops.rms_norm.register_impl("testok")
    def rms_norm(
        x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
    ) -> Tensor:
        return ops.rms_norm.native_fn(x, weight, epsilon, variance_size)
"""

BAD_KERNEL_SET = """
    raise ImportError("ir_test_kernels_bad needs libfoo, which is not installed")
"""

TEST_PLATFORM = """
    from ir_op.platforms import Platform, load_kernel_sets


    class TestPlatform(Platform):
        name = "testplat"
        device_type = "cpu"
        kernel_set = "testok"

        @classmethod
        def is_available(cls) -> bool:
            return False

        def import_ir_kernels(self) -> None:
            load_kernel_sets(["testok"])  # this platform never loads other vendors' kernels
"""

PROBE = """
import json, logging, sys
import ir_op
from ir_op import ops, platforms
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
before = "ir_test_kernels_ok" in sys.modules
priority = ops.rms_norm.get_priority()
import torch
x = torch.randn(3, 16)
ops.rms_norm(x, None, 1e-6)
platforms.current_platform().import_ir_kernels()  # idempotent: no second warning or import
print(json.dumps({
    "loaded_before_first_use": before,
    "platform": platforms.current_platform().name,
    "emulated": platforms.current_platform().emulated,
    "loaded": {n: [k.distribution, k.version] for n, k in platforms.loaded_kernel_sets().items()},
    "errors": {n: f"{type(e).__name__}: {e}" for n, e in platforms.kernel_set_errors().items()},
    "providers": sorted(ops.rms_norm.impls),
    "priority": priority,
    "picked": ops.rms_norm.dispatch(x, None, 1e-6).provider,
}))
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    _write_distribution(
        site,
        "ir-test-kernels-ok",
        {"ir_op.kernels": {"testok": "ir_test_kernels_ok"}},
        {"ir_test_kernels_ok": GOOD_KERNEL_SET},
    )
    _write_distribution(
        site,
        "ir-test-kernels-bad",
        {"ir_op.kernels": {"testbad": "ir_test_kernels_bad"}},
        {"ir_test_kernels_bad": BAD_KERNEL_SET},
    )
    _write_distribution(
        site,
        "ir-test-platform",
        {"ir_op.platforms": {"testplat": "ir_test_platform:TestPlatform"}},
        {"ir_test_platform": TEST_PLATFORM},
    )
    return site


def _run(site: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("IR_OP_", "TRITON_"))}
    full_env["PYTHONPATH"] = str(site)
    full_env["IR_OP_PLATFORM"] = "cpu"
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, check=False
    )


def _probe(site: Path, **env: str) -> tuple[dict[str, object], str]:
    result = _run(site, PROBE, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_kernel_sets_load_lazily_and_failures_are_recorded_once(plugin_site: Path) -> None:
    data, stderr = _probe(plugin_site)
    assert data["loaded_before_first_use"] is False
    assert data["loaded"]["testok"] == ["ir-test-kernels-ok", "1.2.3"]  # type: ignore[index]
    assert data["errors"]["testbad"] == (  # type: ignore[index]
        "ImportError: ir_test_kernels_bad needs libfoo, which is not installed"
    )
    assert stderr.count("kernel set 'testbad'") == 1
    assert "testok" in data["providers"]  # type: ignore[operator]
    assert data["priority"] == []  # the CPU platform names no kernel set
    assert data["picked"] == "native"


def test_out_of_tree_platform_and_its_kernel_choice(plugin_site: Path) -> None:
    data, _ = _probe(plugin_site, IR_OP_PLATFORM="testplat")
    assert data["platform"] == "testplat" and data["emulated"] is True
    assert data["priority"] == ["testok"]
    assert data["picked"] == "testok"
    assert "testbad" not in data["errors"]  # type: ignore[operator]  # its import_ir_kernels skipped it


def test_disable_plugins(plugin_site: Path) -> None:
    data, _ = _probe(plugin_site, IR_OP_DISABLE_PLUGINS="1")
    assert data["loaded"] == {} and data["errors"] == {}
    assert data["providers"] == ["native"]
    result = _run(plugin_site, PROBE, IR_OP_DISABLE_PLUGINS="1", IR_OP_PLATFORM="testplat")
    assert result.returncode != 0
    assert "IR_OP_PLATFORM='testplat' names no platform" in result.stderr


def test_info_shows_kernel_sets_and_errors(plugin_site: Path) -> None:
    result = _run(plugin_site, "from ir_op.cli import main; raise SystemExit(main(['info']))")
    assert result.returncode == 0, result.stderr
    assert "testok   ir-test-kernels-ok 1.2.3" in result.stdout
    assert "testbad  FAILED TO LOAD: ImportError: ir_test_kernels_bad needs libfoo" in result.stdout
    assert "testok     ok" in result.stdout
