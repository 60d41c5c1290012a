"""``KernelSetRegistration``: the registration tests every Triton kernel set runs.

A kernel set described by a :class:`~ir_triton.kernel_set.TritonKernelSet`
subclasses it in its tests, naming the description (and any other provider it registers
unsupported where Triton is missing)::

    class TestRegistration(KernelSetRegistration):
        kernel_set = KERNEL_SET

The tests: its provider is registered for exactly the ops it lists; on every other built-in
platform each one is unsupported, saying which platform it is, and absent from the priorities;
on its own platform (real, or emulated while Triton interprets) each one is supported and in the
priorities; and in a process without Triton the kernel set still loads, each provider registered
unsupported with the reason that names how to get Triton (and likewise, naming numpy, where
Triton's interpreter is asked for without the numpy it needs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from typing import ClassVar

import pytest

from ir_op import ops
from ir_op.op import IrOp
from ir_op.platforms import builtin_platforms
from ir_op.testing import forced_platform
from ir_triton.kernel_set import EMULATE_HINT, TritonKernelSet

_WITHOUT_MODULE = """
import sys
missing = sys.argv[1]
sys.modules[missing] = None
import importlib.util
real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == missing else real(name, *a)
from ir_op import IrOp, ops
from ir_op.platforms import kernel_set_errors
ops.rms_norm.get_priority()  # loads the kernel sets
print(kernel_set_errors(), file=sys.stderr)  # what failed to load, for the test's message
providers = sys.argv[2:]
for name, op in sorted(IrOp.registry.items()):
    for provider in providers:
        if provider in op.impls:
            impl = op.impls[provider]
            print(name, provider, impl.supported, impl.unsupported_reason, sep="|")
"""
"""Loads the kernel sets in a process where the module ``argv[1]`` cannot be imported, and
prints each of the providers ``argv[2:]``'s registrations: ``op|provider|supported|reason``."""


class KernelSetRegistration:
    """Registration tests of the kernel set :attr:`kernel_set` (see the module doc)."""

    kernel_set: ClassVar[TritonKernelSet]
    also_without_triton: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    """Other providers the kernel set registers unsupported where Triton is missing, with their
    ops (ir-kernels-rocm: ``aiter``, whose argument checks need ``ir_triton``)."""

    def test_provided_ops_match_the_registry(self) -> None:
        ops.rms_norm.get_priority()  # loads the kernel sets
        provider = self.kernel_set.provider
        registered = {name for name, op in IrOp.registry.items() if provider in op.impls}
        assert registered == set(self.kernel_set.ops)

    def test_unsupported_elsewhere_with_the_reason(self) -> None:
        kernel_set = self.kernel_set
        for platform in builtin_platforms():
            if platform == kernel_set.platform:
                continue
            with forced_platform(platform):
                for name in kernel_set.ops:
                    op = IrOp.registry[name]
                    impl = op.impls[kernel_set.provider]
                    assert not impl.supported, platform
                    assert impl.unsupported_reason == (
                        f"platform is {platform}, not {kernel_set.platform}"
                    )
                    assert kernel_set.provider not in op.get_priority(), platform

    def test_supported_on_its_platform_real_or_emulated(self) -> None:
        kernel_set = self.kernel_set
        with forced_platform(kernel_set.platform) as platform:
            if platform.emulated and os.environ.get("TRITON_INTERPRET") != "1":
                pytest.skip(
                    f"emulation needs TRITON_INTERPRET=1 (the {kernel_set.platform} session "
                    "sets it)"
                )
            for name in kernel_set.ops:
                op = IrOp.registry[name]
                impl = op.impls[kernel_set.provider]
                assert impl.supported, impl.unsupported_reason
                assert kernel_set.provider in op.get_priority(), name

    def _registrations_without(self, module: str, env: Mapping[str, str]) -> list[list[str]]:
        kernel_set = self.kernel_set
        expected = {(name, kernel_set.provider) for name in kernel_set.ops}
        for provider, names in self.also_without_triton.items():
            expected |= {(name, provider) for name in names}
        providers = sorted({provider for _, provider in expected})
        result = subprocess.run(
            [sys.executable, "-c", _WITHOUT_MODULE, module, *providers],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "IR_OP_PLATFORM": kernel_set.platform, **env},
        )
        assert result.returncode == 0, result.stderr
        rows = [line.split("|") for line in result.stdout.strip().splitlines()]
        assert {(name, provider) for name, provider, *_ in rows} == expected, result.stderr
        return rows

    def test_without_triton_the_providers_say_why(self) -> None:
        reason = f"triton is not installed ({self.kernel_set.triton_hint})"
        for name, provider, supported, why in self._registrations_without("triton", {}):
            assert (supported, why) == ("False", reason), (name, provider)

    def test_interpreter_without_numpy_the_providers_say_why(self) -> None:
        """Triton's interpreter needs numpy (``import triton`` imports it once the interpreter
        is asked for); a production install may lack it. The kernel set still loads, and each
        provider names numpy and the ``ir-op[emulate]`` extra, not a missing Triton."""
        rows = self._registrations_without("numpy", {"TRITON_INTERPRET": "1"})
        for name, provider, supported, why in rows:
            assert supported == "False", (name, provider)
            assert "numpy" in why, (name, provider, why)
            assert EMULATE_HINT in why, (name, provider, why)
            assert "triton is not installed" not in why, (name, provider, why)
