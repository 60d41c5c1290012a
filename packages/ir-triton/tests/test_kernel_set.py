"""ir_triton.kernel_set: where a Triton kernel set runs, and its registration
without Triton."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, register_op
from ir_triton import kernel_set as triton_kernel_set
from ir_triton.kernel_set import TritonKernelSet

KERNEL_SET = TritonKernelSet(
    platform="rocm", provider="rocm", ops=("double",), triton_hint="get it from somewhere"
)


def double(x: Tensor) -> Tensor:
    return x * 2


def _hide(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make the kernel-set checks see ``module`` as not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        triton_kernel_set.importlib.util,
        "find_spec",
        lambda name, *a: None if name == module else real(name, *a),
    )


def _no_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "triton")


def test_without_triton_the_reason_names_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_triton(monkeypatch)
    assert KERNEL_SET.triton_missing_reason() == "triton is not installed (get it from somewhere)"


def test_with_triton_nothing_is_missing() -> None:
    pytest.importorskip("triton")
    assert KERNEL_SET.triton_missing_reason() is None


def test_register_unsupported(isolated: dict[str, IrOp], monkeypatch: pytest.MonkeyPatch) -> None:
    op = register_op(double)
    _no_triton(monkeypatch)
    KERNEL_SET.register_unsupported()
    KERNEL_SET.register_unsupported("vendor_lib", ["double"])
    for provider in ("rocm", "vendor_lib"):
        impl = op.impls[provider]
        assert not impl.supported
        assert impl.unsupported_reason == "triton is not installed (get it from somewhere)"
    op.set_default(["rocm", "vendor_lib", "native"])
    assert op.get_priority() == ["native"]
    assert torch.equal(op(torch.ones(2)), torch.full((2,), 2.0))


def test_unsupported_reason_without_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_triton(monkeypatch)
    assert KERNEL_SET.unsupported_reason() == "triton is not installed (get it from somewhere)"
    assert KERNEL_SET.supported() is False


def test_unsupported_reason_on_another_platform() -> None:
    pytest.importorskip("triton")
    from ir_op.testing import forced_platform

    with forced_platform("cpu"):
        assert KERNEL_SET.unsupported_reason() == "platform is cpu, not rocm"
        assert KERNEL_SET.supported() is False


def test_supported_on_its_platform_emulated_while_interpreting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("triton")
    from ir_op.testing import forced_platform

    monkeypatch.setattr(triton_kernel_set, "interpreting", lambda: True)
    with forced_platform("rocm"):
        assert KERNEL_SET.unsupported_reason() is None
        assert KERNEL_SET.supported() is True
    monkeypatch.setattr(triton_kernel_set, "interpreting", lambda: False)
    with forced_platform("rocm"):
        assert "TRITON_INTERPRET=1 is not set" in str(KERNEL_SET.unsupported_reason())


def _no_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "numpy")


def test_interpreter_without_numpy_names_numpy_and_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("triton")
    _no_numpy(monkeypatch)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    reason = KERNEL_SET.kernels_unavailable_reason()
    assert reason is not None
    assert "numpy" in reason
    assert triton_kernel_set.EMULATE_HINT in reason
    assert KERNEL_SET.triton_missing_reason() is None  # Triton itself is there
    assert KERNEL_SET.unsupported_reason() == reason
    assert not triton_kernel_set.interpreting()


def test_without_numpy_and_without_the_interpreter_nothing_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("triton")
    _no_numpy(monkeypatch)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert triton_kernel_set.interpreter_missing_reason() is None
    assert KERNEL_SET.kernels_unavailable_reason() is None


def test_info_reads_the_triton_version_from_its_metadata() -> None:
    triton = pytest.importorskip("triton")
    from ir_op.cli import _triton_version

    assert _triton_version() == triton.__version__
