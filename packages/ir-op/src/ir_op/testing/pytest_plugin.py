"""pytest options shared by every package of the ir family.

Enable with ``-p ir_op.testing.pytest_plugin`` (the workspace's pytest configuration does).

- ``--device {cpu,cuda,rocm,xpu}``: the platform under test. Without its hardware, the platform
  is emulated: ``IR_OP_PLATFORM`` forces it and ``TRITON_INTERPRET=1`` runs Triton kernels on
  CPU tensors.
- ``--conformance-grid {full,smoke}``: how much of the conformance grid
  (:mod:`ir_op.testing.conformance`) runs. ``full`` (the default) is the whole grid for the
  session: every dtype and shape on real hardware, the emulated subset under the interpreter.
  ``smoke`` keeps every op, check, layout, special value and input variant of that grid in one
  dtype (bfloat16): enough to show a second torch version integrates, since the kernels'
  numerics do not depend on torch's version (the CI runs the full grid on the newest torch).
- Markers: ``gpu`` (needs the real hardware; skipped when emulated) and ``slow``.
- Fixture ``ir_device``: what the session runs on, and the torch device for test tensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

DEVICES = ("cpu", "cuda", "rocm", "xpu")
CONFORMANCE_GRIDS = ("full", "smoke")


@dataclass(frozen=True)
class DeviceUnderTest:
    name: str
    """The platform under test: one of ``DEVICES``."""
    emulated: bool
    """True when the platform's hardware is absent and its kernels run in the Triton interpreter."""

    @property
    def tensor_device(self) -> str:
        """The torch device that test tensors go on."""
        if self.emulated or self.name == "cpu":
            return "cpu"
        return "xpu" if self.name == "xpu" else "cuda"


_device: DeviceUnderTest | None = None
_conformance_grid = "full"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ir", "ir package family")
    group.addoption(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="platform under test (emulated with the Triton interpreter without its hardware)",
    )
    group.addoption(
        "--conformance-grid",
        choices=CONFORMANCE_GRIDS,
        default="full",
        help="full: the conformance grid in every dtype; smoke: the same cases in bfloat16 only",
    )


def pytest_configure(config: pytest.Config) -> None:
    global _device, _conformance_grid
    _conformance_grid = config.getoption("--conformance-grid")
    config.addinivalue_line(
        "markers", "gpu: needs the device's real hardware (skipped when emulated)"
    )
    config.addinivalue_line("markers", "slow: takes long; deselect with -m 'not slow'")

    from ir_op.platforms import PLATFORM_ENV_VAR, builtin_platforms

    name = config.getoption("--device")
    already = os.environ.get(PLATFORM_ENV_VAR)
    if already and already != name:
        raise pytest.UsageError(
            f"--device {name} conflicts with {PLATFORM_ENV_VAR}={already}; unset one of them"
        )
    os.environ[PLATFORM_ENV_VAR] = name
    emulated = not builtin_platforms()[name].is_available()
    if emulated:
        # Must be set before any Triton kernel is defined: kernel sets load lazily, after this.
        os.environ["TRITON_INTERPRET"] = "1"
        _check_triton_interprets(name)
    _device = DeviceUnderTest(name, emulated)


def _check_triton_interprets(device: str) -> None:
    """Fail early if Triton's language was built for compiling, not interpreting.

    Triton fixes that when ``triton.language`` is first imported, and ``import ir_op`` (through
    ``torch._dynamo``) imports it before this plugin can set ``TRITON_INTERPRET``: an emulated
    session then needs the variable in its environment from the start (nox sets it).
    """
    import sys

    language = sys.modules.get("triton.language")
    jit = sys.modules.get("triton.runtime.jit")
    if language is None or jit is None:
        return
    if isinstance(getattr(language, "sum", None), jit.JITFunction):
        raise pytest.UsageError(
            f"--device {device} is emulated here, which runs Triton kernels in Triton's "
            "interpreter, but Triton was imported before this plugin could turn that on; "
            "start pytest with TRITON_INTERPRET=1 in the environment (nox sessions do)"
        )


def pytest_report_header(config: pytest.Config) -> str:
    assert _device is not None
    if _device.emulated:
        header = (
            f"ir device: {_device.name} EMULATED (IR_OP_PLATFORM={_device.name}, "
            "TRITON_INTERPRET=1, CPU tensors); tests marked gpu are skipped"
        )
    else:
        header = f"ir device: {_device.name} (real hardware)"
    return f"{header}; conformance grid: {_conformance_grid}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    assert _device is not None
    if _device.name != "cpu" and not _device.emulated:
        return
    why = (
        f"needs real {_device.name} hardware; this session emulates it"
        if _device.emulated
        else "needs GPU hardware; this session runs on the CPU"
    )
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=why))


def conformance_grid() -> str:
    """``full`` or ``smoke``: the ``--conformance-grid`` of this session (see the module doc)."""
    return _conformance_grid


def device_under_test() -> DeviceUnderTest:
    """The platform under test, for code that runs before fixtures (``pytest_generate_tests``).

    Raises ``RuntimeError`` outside a pytest session that loaded this plugin.
    """
    if _device is None:
        raise RuntimeError(
            "no device under test: run pytest with -p ir_op.testing.pytest_plugin (the "
            "workspace's pytest configuration loads it)"
        )
    return _device


@pytest.fixture(scope="session")
def ir_device() -> DeviceUnderTest:
    """The platform under test and where its tensors live."""
    return device_under_test()
