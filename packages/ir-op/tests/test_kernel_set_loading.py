"""Kernel sets load all or nothing, one provider name has one owner, and failures are visible.

Kernel sets here are real distributions (a ``.dist-info`` folder with ``entry_points.txt``) in a
temporary folder put on ``sys.path``, registering on throwaway ops of an isolated registry.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, IrOpPriorityConfig, platforms, register_op
from ir_op._loading import ProviderConflictError
from ir_op.cli import main
from ir_op.platforms import plugins
from ir_op.testing import forced_platform


def scale(x: Tensor, factor: float) -> Tensor:
    return x * factor


def shift(x: Tensor, amount: float) -> Tensor:
    return x + amount


@dataclass
class Site:
    """A folder on ``sys.path`` to install fake kernel-set distributions into."""

    path: Path
    modules: list[str]

    def install(self, dist: str, kernel_set: str, source: str) -> str:
        """Install distribution ``dist`` declaring kernel set ``kernel_set`` whose module runs
        ``source``; returns the module name (unique, so no test sees another's import)."""
        module = f"ir_test_ks_{uuid.uuid4().hex[:10]}"
        info = self.path / f"{dist.replace('-', '_')}-0.7.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.7.0\n")
        (info / "entry_points.txt").write_text(f"[ir_op.kernels]\n{kernel_set} = {module}\n")
        (info / "RECORD").write_text("")
        (self.path / f"{module}.py").write_text(textwrap.dedent(source))
        self.modules.append(module)
        importlib.invalidate_caches()
        return module


@pytest.fixture
def ops(isolated: dict[str, IrOp]) -> tuple[IrOp, IrOp]:
    """Two throwaway ops (``scale``, ``shift``); the real kernel sets are already loaded."""
    platforms.ensure_kernels_loaded()
    return register_op(scale), register_op(shift)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded, scopes = dict(plugins._loaded), dict(plugins._scopes)
    errors, warned = dict(plugins._errors), set(plugins._warned)
    found = Site(tmp_path, [])
    try:
        yield found
    finally:
        plugins._loaded.clear()
        plugins._loaded.update(loaded)
        plugins._scopes.clear()
        plugins._scopes.update(scopes)
        plugins._errors.clear()
        plugins._errors.update(errors)
        plugins._warned.clear()
        plugins._warned.update(warned)
        for module in found.modules:
            sys.modules.pop(module, None)
        importlib.invalidate_caches()


PREAMBLE = """
    from torch import Tensor

    from ir_op import IrOp

    scale, shift = IrOp.registry["scale"], IrOp.registry["shift"]


    def times(x: Tensor, factor: float) -> Tensor:
        return x * factor


    def unchanged(x: Tensor, factor: float) -> Tensor:
        return x


    def plus(x: Tensor, amount: float) -> Tensor:
        return x + amount


    def positive(x: Tensor, amount: float) -> bool:
        return amount > 0
"""

PARTIAL = (
    PREAMBLE
    + """
    scale.register_impl("halfway")(times)
    shift.register_impl("halfway", supports_args=positive)(plus)
    raise {error}
"""
)


def _impl(x: Tensor, factor: float) -> Tensor:
    return x * factor


def test_a_failed_import_takes_back_every_provider_it_registered(
    ops: tuple[IrOp, IrOp], site: Site
) -> None:
    scale_op, shift_op = ops
    shift_op.get_priority()  # defaults applied: they are recomputed after the take-back
    site.install("ir-test-partial", "partial", PARTIAL.format(error="OSError('libfoo.so')"))
    platforms.load_kernel_sets(["partial"])
    assert "halfway" not in scale_op.impls and "halfway" not in shift_op.impls
    assert list(scale_op.impls) == ["native"]
    error = platforms.kernel_set_errors()["partial"]
    assert isinstance(error, OSError) and str(error) == "libfoo.so"
    assert "partial" not in platforms.loaded_kernel_sets()
    assert shift_op._priority_state() == (None, False)
    x = torch.ones(2, 4)
    assert scale_op.dispatch(x, 2.0).provider == "native"
    assert shift_op.dispatch(x, 1.0).provider == "native"
    platforms.load_kernel_sets(["partial"])  # a failure is final: not imported again
    assert "halfway" not in scale_op.impls


def test_a_user_priority_naming_a_taken_back_provider_is_refiltered(
    ops: tuple[IrOp, IrOp], site: Site
) -> None:
    scale_op, _ = ops
    source = PARTIAL.replace(
        "raise {error}", 'scale.set_default(["halfway", "native"])\n    raise RuntimeError("late")'
    )
    site.install("ir-test-partial", "partial", source)
    platforms.load_kernel_sets(["partial"])
    assert repr(platforms.kernel_set_errors()["partial"]) == "RuntimeError('late')"
    assert scale_op.get_priority() == ["native"]


@pytest.mark.parametrize(
    "error", ["SystemExit(3)", "GeneratorExit()", "BaseException('odd')", "SystemExit('bye')"]
)
def test_base_exceptions_fail_the_load_not_the_process(
    ops: tuple[IrOp, IrOp], site: Site, error: str
) -> None:
    site.install("ir-test-exits", "exits", PARTIAL.format(error=error))
    platforms.load_kernel_sets(["exits"])  # returns: the process goes on
    recorded = platforms.kernel_set_errors()["exits"]
    assert type(recorded).__name__ == error.partition("(")[0]
    assert all("halfway" not in op.impls for op in ops)


def test_keyboard_interrupt_takes_back_and_propagates(ops: tuple[IrOp, IrOp], site: Site) -> None:
    site.install("ir-test-interrupted", "interrupted", PARTIAL.format(error="KeyboardInterrupt"))
    with pytest.raises(KeyboardInterrupt):
        platforms.load_kernel_sets(["interrupted"])
    assert all("halfway" not in op.impls for op in ops)
    assert "interrupted" not in platforms.kernel_set_errors()  # not a failure: tried again later


IMPOSTOR = (
    PREAMBLE
    + """
    scale.register_impl("vendor")(unchanged)  # the name another vendor owns; returns x as is
"""
)

GENUINE = (
    PREAMBLE
    + """
    shift.register_impl("vendor")(plus)
    scale.register_impl("vendor")(times)
    shift.register_impl("vendor_extra")(plus)
"""
)


def _assert_conflict(ops: tuple[IrOp, IrOp], names: tuple[str, str]) -> None:
    errors = platforms.kernel_set_errors()
    for name in names:
        assert name not in platforms.loaded_kernel_sets()
        error = errors[name]
        assert isinstance(error, ProviderConflictError)
        message = str(error)
        assert "kernel set 'impostor' (distribution ir-test-impostor 0.7.0" in message
        assert "kernel set 'genuine' (distribution ir-test-genuine 0.7.0" in message
        assert "provider 'vendor' for op 'scale'" in message and "neither" in message
    for op in ops:  # neither keeps the name, and the genuine set is not half-registered
        assert list(op.impls) == ["native"]


def test_two_kernel_sets_claiming_one_provider_both_fail(
    ops: tuple[IrOp, IrOp], site: Site
) -> None:
    site.install("ir-test-impostor", "impostor", IMPOSTOR)
    site.install("ir-test-genuine", "genuine", GENUINE)
    platforms.load_kernel_sets(["impostor", "genuine"])  # either may come first
    _assert_conflict(ops, ("impostor", "genuine"))
    x = torch.full((1, 4), 3.0)
    assert torch.equal(ops[0](x, 2.0), x * 2)


@pytest.mark.parametrize("first", ["impostor", "genuine"])
def test_a_conflict_also_unloads_a_kernel_set_loaded_earlier(
    ops: tuple[IrOp, IrOp], site: Site, first: str
) -> None:
    site.install("ir-test-impostor", "impostor", IMPOSTOR)
    site.install("ir-test-genuine", "genuine", GENUINE)
    platforms.load_kernel_sets([first])
    assert first in platforms.loaded_kernel_sets()
    assert "vendor" in ops[0].impls
    ops[0].get_priority()
    platforms.load_kernel_sets(["impostor", "genuine"])
    _assert_conflict(ops, ("impostor", "genuine"))
    assert ops[0]._priority_state() == (None, False)


def test_a_conflict_takes_back_a_kernel_set_imported_before_a_reset(
    ops: tuple[IrOp, IrOp], site: Site
) -> None:
    """``forced_platform`` forgets what was loaded, but the modules stay imported with their
    registrations: a conflict afterwards still takes the first kernel set's providers back."""
    site.install("ir-test-genuine", "genuine", GENUINE)
    site.install("ir-test-impostor", "impostor", IMPOSTOR)
    platforms.load_kernel_sets(["genuine"])
    with forced_platform("cpu"):
        platforms.load_kernel_sets(["genuine"])  # the cached module registers nothing again
        platforms.load_kernel_sets(["impostor"])
        _assert_conflict(ops, ("impostor", "genuine"))


def test_a_conflict_the_kernel_set_swallows_still_fails_it(
    ops: tuple[IrOp, IrOp], site: Site
) -> None:
    site.install("ir-test-impostor", "impostor", IMPOSTOR)
    swallowing = GENUINE.replace(
        '    scale.register_impl("vendor")(times)',
        '    try:\n        scale.register_impl("vendor")(times)\n'
        "    except ValueError:\n        pass",
    )
    assert "except ValueError" in swallowing
    site.install("ir-test-genuine", "genuine", swallowing)
    platforms.load_kernel_sets(["impostor"])
    platforms.load_kernel_sets(["genuine"])
    _assert_conflict(ops, ("impostor", "genuine"))


def test_a_name_the_application_registered_fails_only_the_kernel_set(
    ops: tuple[IrOp, IrOp], site: Site
) -> None:
    scale_op, shift_op = ops
    mine = scale_op.register_impl("vendor")(_impl)
    site.install("ir-test-genuine", "genuine", GENUINE)
    platforms.load_kernel_sets(["genuine"])
    error = platforms.kernel_set_errors()["genuine"]
    assert isinstance(error, ProviderConflictError)
    assert "already registered outside any kernel set" in str(error)
    assert scale_op.impls["vendor"] is mine
    assert list(shift_op.impls) == ["native"]


def test_registering_one_name_twice_in_a_kernel_set_is_its_own_error(
    ops: tuple[IrOp, IrOp], site: Site
) -> None:
    twice = IMPOSTOR + '    scale.register_impl("vendor")(times)\n'
    site.install("ir-test-twice", "twice", twice)
    platforms.load_kernel_sets(["twice"])
    error = platforms.kernel_set_errors()["twice"]
    assert not isinstance(error, ProviderConflictError)
    assert "provider 'vendor' is already registered" in str(error)
    assert list(ops[0].impls) == ["native"]


DEFINES_AN_OP = """
    from torch import Tensor

    from ir_op import register_op


    @register_op
    def vendor_only(x: Tensor, factor: float) -> Tensor:
        '''An op only this kernel set defines.'''
        return x * factor


    @vendor_only.register_input_generator
    def _inputs(num_tokens, hidden_size, dtype, factor: float = 0.25, device=None):
        import torch

        return torch.ones(num_tokens, hidden_size, dtype=dtype, device=device), factor
"""


def test_a_failed_kernel_set_takes_back_the_ops_it_defined(
    isolated: dict[str, IrOp], site: Site
) -> None:
    platforms.ensure_kernels_loaded()
    site.install("ir-test-definer", "definer", DEFINES_AN_OP + "\nraise RuntimeError('later')\n")
    platforms.load_kernel_sets(["definer"])
    assert "vendor_only" not in IrOp.registry


def test_ops_a_kernel_set_defines_are_found_before_it_loads(
    isolated: dict[str, IrOp], site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    site.install("ir-test-definer", "definer", DEFINES_AN_OP)
    with forced_platform("cpu"):  # kernel sets not loaded yet
        config = IrOpPriorityConfig(vendor_only=["native"])
        assert dict(config) == {"vendor_only": ("native",)}
    with forced_platform("cpu"):
        assert "vendor_only" in IrOpPriorityConfig.with_default(["native"])
    with forced_platform("cpu"):
        assert main(["explain", "vendor_only", "--shape", "2x8", "--arg", "factor=3"]) == 0
    out = capsys.readouterr().out
    assert "vendor_only(x: bfloat16[2, 8], factor=3.0)" in out
    assert "dispatch picks: native" in out


def test_with_default_answers_the_same_before_and_after_kernel_sets_load(
    isolated: dict[str, IrOp], site: Site
) -> None:
    """A kernel set gives ``scale`` a ``vendor`` provider and ``shift`` none: the shared default
    ``["vendor", "native"]`` is applied the same whether it was built before the kernel set
    loaded or after."""
    scale_op, shift_op = register_op(scale), register_op(shift)
    site.install(
        "ir-test-vendor", "vendor", PREAMBLE + '\n    scale.register_impl("vendor")(times)\n'
    )
    results = []
    for load_first in (False, True):
        with forced_platform("cpu"):  # kernel sets not loaded yet
            if load_first:
                platforms.ensure_kernels_loaded()
            config = IrOpPriorityConfig.with_default(["vendor", "native"])
            config.set_default()
            results.append((dict(config), scale_op.get_priority(), shift_op.get_priority()))
            scale_op._restore_priority_state((None, False))
            shift_op._restore_priority_state((None, False))
    assert results[0] == results[1]
    assert results[0][1:] == (["vendor"], ["native"])


def test_info_check_fails_on_a_failed_kernel_set(
    isolated: dict[str, IrOp], site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    site.install("ir-test-broken", "broken", "raise ImportError('needs libvendor')\n")
    with forced_platform("cpu"):
        assert main(["info", "--check"]) == 1
    captured = capsys.readouterr()
    assert "broken   FAILED TO LOAD: ImportError: needs libvendor" in captured.out
    assert "- kernel set 'broken' failed to load: ImportError: needs libvendor" in captured.err


# -- visible without logging set up (a fresh process, as an application would be) ------------


def _run(site: Path, code: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("IR_OP_", "TRITON_"))}
    full_env["PYTHONPATH"] = str(site)
    full_env["IR_OP_PLATFORM"] = "cpu"
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        env=full_env,
        check=False,
    )


USE = """
import logging, sys, torch
if sys.argv[1:] == ["configured"]:
    logging.basicConfig(format="LOGGED %(message)s", stream=sys.stderr)
from ir_op import ops
x = torch.ones(2, 8)
ops.rms_norm(x, None, 1e-6)
ops.rms_norm(x, None, 1e-6)
ops.silu_and_mul(x)
print("still running")
"""


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("broken_site")
    Site(path, []).install("ir-test-broken", "broken", "raise SystemExit('vendor gave up')\n")
    return path


def test_failures_reach_stderr_once_without_logging_setup(broken_site: Path) -> None:
    result = _run(broken_site, USE, IR_OP_PRIORITY="rms_nrom=cuda,native")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "still running"  # SystemExit did not end the process
    err = result.stderr
    assert err.count("kernel set 'broken' (distribution ir-test-broken 0.7.0") == 1
    assert "failed to load and is skipped" in err and "SystemExit: vendor gave up" in err
    assert err.count("unknown op 'rms_nrom' in IR_OP_PRIORITY; did you mean 'rms_norm'?") == 1


def test_unknown_provider_in_the_environment_is_named_before_the_op_fails(
    broken_site: Path,
) -> None:
    result = _run(broken_site, USE, IR_OP_PRIORITY="silu_and_mul=native,cdua")
    assert result.returncode != 0  # the op whose entry is wrong refuses to run, as before
    assert result.stderr.count("ir-op: op 'silu_and_mul': unknown provider 'cdua'; registered") == 1


def test_with_logging_configured_the_warning_goes_through_logging_only(
    broken_site: Path,
) -> None:
    result = _run(broken_site, USE, "configured", IR_OP_PRIORITY="rms_nrom=native")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "kernel set 'broken'" in line]
    assert len(lines) == 1 and lines[0].startswith("LOGGED ir-op: kernel set 'broken'")
    lines = [line for line in result.stderr.splitlines() if "'rms_nrom'" in line]
    assert len(lines) == 1 and lines[0].startswith("LOGGED ")


def test_a_silenced_ir_op_logger_prints_nothing(broken_site: Path) -> None:
    code = 'import logging; logging.getLogger("ir_op").setLevel(logging.ERROR)\n' + USE
    result = _run(broken_site, code, IR_OP_PRIORITY="rms_nrom=native")
    assert result.returncode == 0, result.stderr
    assert "broken" not in result.stderr and "rms_nrom" not in result.stderr


IMPOSTOR_OF_CUDA = """
    from torch import Tensor

    from ir_op import ops


    @ops.rms_norm.register_impl("cuda")
    def rms_norm(
        x: Tensor, weight: Tensor | None, epsilon: float, variance_size: int | None = None
    ) -> Tensor:
        return x  # not normalized
"""

EMULATED_GPU = """
import json, torch
from ir_op import IrOp, ops, platforms
x = torch.full((2, 8), 3.0)
out = ops.rms_norm(x, None, 1e-6)
print(json.dumps({
    "errors": {n: str(e) for n, e in platforms.kernel_set_errors().items()},
    "loaded": sorted(platforms.loaded_kernel_sets()),
    "with_cuda": sorted(n for n, op in IrOp.registry.items() if "cuda" in op.impls),
    "normalized": bool(torch.allclose(out, torch.ones_like(x), atol=1e-3)),
}))
"""


def test_an_impostor_of_the_cuda_kernel_set_fails_with_it(tmp_path: Path) -> None:
    """The issue's case: a distribution registering provider ``cuda`` for ``rms_norm`` next to
    the real ir-kernels-cuda, on an emulated GPU with default priorities."""
    pytest.importorskip("ir_kernels_cuda")
    Site(tmp_path, []).install("ir-test-fastnorm", "fastnorm", IMPOSTOR_OF_CUDA)
    result = _run(tmp_path, EMULATED_GPU, IR_OP_PLATFORM="cuda", TRITON_INTERPRET="1")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"fastnorm", "cuda"} <= set(data["errors"])
    for name in ("fastnorm", "cuda"):
        message = data["errors"][name]
        assert "kernel set 'fastnorm' (distribution ir-test-fastnorm 0.7.0" in message
        assert "kernel set 'cuda' (distribution ir-kernels-cuda" in message
    assert "cuda" not in data["loaded"] and data["with_cuda"] == []  # not half-registered
    assert data["normalized"]
    assert result.stderr.count("failed to load and is skipped") >= 2
