"""The aiter provider, with and without AITER, and the ROCm platform's defaults.

AITER needs an AMD GPU, so these tests install a stand-in ``aiter`` module: it has the two
functions the provider calls, records each call (shapes, strides, dtypes, data pointers) and
computes the result the way the native functions do, on whatever device the tensors are on. In
process, the stand-in goes into ``sys.modules`` only inside :func:`standin_aiter`, which resolves
the platform afresh inside and after it (``forced_platform``), so no other test sees it; one test
runs a fresh interpreter that imports a stand-in package from ``PYTHONPATH`` instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from ir_kernels_rocm import aiter_provider
from ir_op import IrOp, enable_torch_wrap, ops
from ir_op.platforms import current_platform
from ir_op.platforms.rocm import aiter_installed
from ir_op.testing import assert_outputs_close, forced_platform, preserved_priorities, random_rows

AITER = "aiter"


@dataclass
class Call:
    function: str
    shapes: list[tuple[int, ...]]
    strides: list[tuple[int, ...]]
    dtypes: list[torch.dtype]
    data_ptrs: list[int]


@dataclass
class StandinAiter:
    """What a stand-in ``aiter`` module recorded."""

    module: types.ModuleType
    calls: list[Call] = field(default_factory=list)


def _record(standin: StandinAiter, function: str, *tensors: torch.Tensor) -> None:
    standin.calls.append(
        Call(
            function,
            [tuple(t.shape) for t in tensors],
            [tuple(t.stride()) for t in tensors],
            [t.dtype for t in tensors],
            [t.data_ptr() for t in tensors],
        )
    )


def _normalized(x32: torch.Tensor, weight: torch.Tensor, epsilon: float) -> torch.Tensor:
    rstd = torch.rsqrt(x32.square().mean(dim=-1, keepdim=True) + epsilon)
    return ((x32 * rstd).to(weight.dtype).float() * weight.float()).to(weight.dtype)


def make_standin() -> StandinAiter:
    module = types.ModuleType(AITER)
    module.__spec__ = importlib.util.spec_from_loader(AITER, loader=None)
    standin = StandinAiter(module)

    def rms_norm(input: torch.Tensor, weight: torch.Tensor, epsilon: float) -> torch.Tensor:
        _record(standin, "rms_norm", input, weight)
        assert input.dim() == 2 and input.stride(-1) == 1, "aiter takes 2-D row-contiguous input"
        return _normalized(input.float(), weight, epsilon)

    def rmsnorm2d_fwd_with_add(
        out: torch.Tensor,
        input: torch.Tensor,
        residual_in: torch.Tensor,
        residual_out: torch.Tensor,
        weight: torch.Tensor,
        epsilon: float,
    ) -> None:
        _record(standin, "rmsnorm2d_fwd_with_add", out, input, residual_in, residual_out, weight)
        assert input.dim() == 2 and input.stride(-1) == 1, "aiter takes 2-D row-contiguous input"
        assert residual_in.is_contiguous() and residual_out.is_contiguous() and out.is_contiguous()
        total = input.float() + residual_in.float()
        residual_out.copy_(total)
        out.copy_(_normalized(total.to(input.dtype).float(), weight, epsilon))

    module.rms_norm = rms_norm  # type: ignore[attr-defined]
    module.rmsnorm2d_fwd_with_add = rmsnorm2d_fwd_with_add  # type: ignore[attr-defined]
    return standin


@contextlib.contextmanager
def standin_aiter() -> Iterator[StandinAiter]:
    """A stand-in ``aiter`` importable inside the block, on the (possibly emulated) ROCm platform.

    ``forced_platform`` resets every provider's support when the block starts and when it ends;
    the stand-in leaves ``sys.modules`` before anything asks again.
    """
    if sys.modules.get(AITER) is not None or importlib.util.find_spec(AITER) is not None:
        pytest.skip("a real aiter is installed here")
    standin = make_standin()
    sys.modules[AITER] = standin.module
    try:
        with forced_platform("rocm"):
            yield standin
    finally:
        del sys.modules[AITER]


def _skip_if_real_aiter() -> None:
    if importlib.util.find_spec(AITER) is not None:
        pytest.skip("a real aiter is installed here")


def _device() -> str:
    return current_platform().tensor_device


# -- registration -------------------------------------------------------------------------------


def test_without_aiter_the_provider_is_unsupported_and_says_why() -> None:
    _skip_if_real_aiter()
    with forced_platform("rocm"):
        for op in (ops.rms_norm, ops.fused_add_rms_norm):
            impl = op.impls[AITER]
            assert not impl.supported
            assert impl.unsupported_reason == (
                "aiter is not installed (AMD's AITER library, github.com/ROCm/aiter)"
            )
            assert AITER not in op.get_priority()


def test_only_the_norms_have_an_aiter_provider() -> None:
    ops.rms_norm.get_priority()  # loads the kernel sets
    assert {name for name, op in IrOp.registry.items() if AITER in op.impls} == set(
        aiter_provider.PROVIDED_OPS
    )


def test_with_aiter_the_provider_is_supported_on_rocm_only() -> None:
    with standin_aiter():
        assert ops.rms_norm.impls[AITER].supported
        assert ops.fused_add_rms_norm.impls[AITER].supported
        with forced_platform("cuda"):
            assert ops.rms_norm.impls[AITER].unsupported_reason == "platform is cuda, not rocm"
    assert not ops.rms_norm.impls[AITER].supported  # the stand-in is gone


def test_a_failing_aiter_import_is_the_reason() -> None:
    _skip_if_real_aiter()

    class Broken(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, *args: Any) -> Any:
            if name == AITER:
                raise OSError("libamdhip64.so: cannot open shared object file")
            return None

    finder = Broken()
    sys.meta_path.insert(0, finder)
    try:
        with forced_platform("rocm"):
            reason = ops.rms_norm.impls[AITER].unsupported_reason
    finally:
        sys.meta_path.remove(finder)
    assert (
        reason == "aiter failed to import: OSError: libamdhip64.so: cannot open shared object file"
    )


# -- the platform defaults ----------------------------------------------------------------------


def test_rocm_defaults_put_aiter_first_when_installed() -> None:
    with standin_aiter() as standin:
        assert aiter_installed()
        platform = current_platform()
        assert platform.eager_providers() == ["aiter", "rocm", "native"]
        assert platform.compile_providers() == ["native"]
        eager = platform.get_default_ir_op_priority(compiling=False)
        assert eager["rms_norm"] == ("aiter", "rocm", "native")
        assert eager["rms_norm_static_fp8_quant"] == ("aiter", "rocm", "unfused", "native")
        compiled = platform.get_default_ir_op_priority(compiling=True)
        assert compiled["rms_norm"] == ("native",)
        assert compiled["rms_norm_static_fp8_quant"] == ("unfused", "native")
        assert ops.rms_norm.get_priority(compiling=True) == ["native"]
        if os.environ.get("TRITON_INTERPRET") == "1" or not platform.emulated:
            assert ops.rms_norm.get_priority() == ["aiter", "rocm", "native"]
            assert ops.silu_and_mul.get_priority() == ["rocm", "native"]  # it has no aiter
        else:  # the rocm kernels cannot run here; aiter's stand-in can
            assert ops.rms_norm.get_priority() == ["aiter", "native"]
        assert standin.calls == []  # defaults never call the library


def test_rocm_defaults_without_aiter() -> None:
    _skip_if_real_aiter()
    with forced_platform("rocm") as platform:
        assert not aiter_installed()
        assert platform.eager_providers() == ["rocm", "native"]
        assert platform.compile_providers() == ["native"]
        assert platform.get_default_ir_op_priority(compiling=False)["rms_norm"] == (
            "rocm",
            "native",
        )


# -- calls --------------------------------------------------------------------------------------


def test_rms_norm_flattens_to_2d_without_copies() -> None:
    with standin_aiter() as standin:
        device = _device()
        impl = ops.rms_norm.impls[AITER]
        x = random_rows([2, 3], 64, torch.bfloat16, device=device)
        w = random_rows([], 64, torch.bfloat16, device=device)
        assert impl.supports_args(x, w, 1e-6)
        out = impl.impl_fn(x, w, 1e-6)
        (call,) = standin.calls
        assert call.function == "rms_norm"
        assert call.shapes == [(6, 64), (64,)]
        assert call.dtypes == [torch.bfloat16, torch.bfloat16]
        assert call.data_ptrs == [x.data_ptr(), w.data_ptr()]  # views, no copies
        assert out.shape == x.shape and out.dtype == x.dtype
        assert_outputs_close(ops.rms_norm, out, ops.rms_norm.native_fn(x, w, 1e-6))


def test_padded_rows_go_as_they_are() -> None:
    """A 2-D slice of a wider buffer (``qkv[:, :hidden]``) is already 2-D: its row stride stays."""
    with standin_aiter() as standin:
        device = _device()
        x = random_rows([5], 64, torch.float16, strided=True, device=device)
        assert ops.rms_norm.impls[AITER].supports_args(x, None, 1e-6)
        out = ops.rms_norm.impls[AITER].impl_fn(x, None, 1e-6)
        (call,) = standin.calls
        assert call.strides[0] == x.stride() and call.data_ptrs[0] == x.data_ptr()
        assert call.shapes[1] == (64,) and call.dtypes[1] == torch.float16  # the ones stand-in
        assert_outputs_close(ops.rms_norm, out, ops.rms_norm.native_fn(x, None, 1e-6))


def test_a_per_head_slice_of_fused_qkv_is_not_taken() -> None:
    """``q`` viewed per head out of a fused QKV cannot flatten to 2-D without a copy: the
    provider rejects it and dispatch goes to the next provider; AITER is never called."""
    with standin_aiter() as standin, preserved_priorities():
        device = _device()
        tokens, q_heads, kv_heads, head_size = 4, 8, 2, 16
        qkv = random_rows(
            [tokens], (q_heads + 2 * kv_heads) * head_size, torch.bfloat16, device=device
        )
        q = qkv.view(tokens, q_heads + 2 * kv_heads, head_size)[:, :q_heads]
        w = random_rows([], head_size, torch.bfloat16, device=device)
        with pytest.raises(RuntimeError):
            q.view(-1, head_size)  # the rule: no 2-D view of it exists
        assert not ops.rms_norm.impls[AITER].supports_args(q, w, 1e-6)
        ops.rms_norm.set_default([AITER, "native"])
        assert ops.rms_norm.dispatch(q, w, 1e-6).provider == "native"
        with enable_torch_wrap(False):
            out = ops.rms_norm(q, w, 1e-6)
        assert standin.calls == []
        assert_outputs_close(ops.rms_norm, out, ops.rms_norm.native_fn(q, w, 1e-6))
        # the same heads, contiguous, flatten: AITER gets [tokens * heads, head_size]
        with enable_torch_wrap(False):
            ops.rms_norm(q.contiguous(), w, 1e-6)
        assert [call.shapes[0] for call in standin.calls] == [(tokens * q_heads, head_size)]


def test_fused_add_rms_norm_calls_the_out_of_place_kernel() -> None:
    with standin_aiter() as standin, preserved_priorities():
        device = _device()
        x = random_rows([2, 3], 64, torch.bfloat16, device=device)
        residual = random_rows([2, 3], 64, torch.bfloat16, device=device)
        w = random_rows([], 64, torch.bfloat16, device=device)
        expected = ops.fused_add_rms_norm.native_fn(x, residual, w, 1e-6)
        ops.fused_add_rms_norm.set_default([AITER, "native"])
        assert ops.fused_add_rms_norm.dispatch(x, residual, w, 1e-6).provider == AITER
        x_before, residual_before = x.clone(), residual.clone()
        out, residual_out = ops.fused_add_rms_norm.maybe_inplace(x, residual, w, 1e-6)
        (call,) = standin.calls
        assert call.function == "rmsnorm2d_fwd_with_add"
        assert call.shapes == [(6, 64)] * 4 + [(64,)]
        assert call.dtypes == [torch.bfloat16] * 5
        assert call.data_ptrs[1:3] == [x.data_ptr(), residual.data_ptr()]
        assert out.data_ptr() not in (x.data_ptr(), residual.data_ptr())  # out of place
        assert torch.equal(x, x_before) and torch.equal(residual, residual_before)
        assert_outputs_close(ops.fused_add_rms_norm, (out, residual_out), expected)


def test_supports_args() -> None:
    with standin_aiter():
        device = _device()
        norm = ops.rms_norm.impls[AITER]
        fused = ops.fused_add_rms_norm.impls[AITER]

        def t(*shape: int, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
            return random_rows(shape[:-1], shape[-1], dtype, device=device)

        x, w = t(4, 64), t(64)
        cases: list[tuple[str, tuple[Any, ...], bool]] = [
            ("bf16", (x, w, 1e-6), True),
            ("fp16", (t(4, 64, dtype=torch.float16), t(64, dtype=torch.float16), 1e-6), True),
            ("fp32: not an AITER dtype", (x.float(), w.float(), 1e-6), False),
            ("no weight", (x, None, 1e-6), True),
            ("weight of another dtype", (x, w.half(), 1e-6), False),
            ("weight strided", (x, t(128)[::2], 1e-6), False),
            ("weight size", (x, t(63), 1e-6), False),
            ("3-D", (t(2, 3, 64), w, 1e-6), True),
            ("1-D", (t(64), w, 1e-6), True),
            ("transposed", (t(64, 4).t(), t(4), 1e-6), False),
            ("variance_size = hidden", (x, w, 1e-6, 64), True),
            ("variance_size < hidden", (x, w, 1e-6, 32), False),
        ]
        for name, args, expected in cases:
            assert norm.supports_args(*args) is expected, name
            residual = torch.empty_like(args[0], memory_format=torch.contiguous_format)
            assert fused.supports_args(args[0], residual, *args[1:]) is expected, name
        padded_residual = t(4, 80)[:, :64]
        assert not fused.supports_args(x, padded_residual, w, 1e-6), "strided residual"
        assert not fused.supports_args(x, x[:3], w, 1e-6), "residual shape"
        assert not fused.supports_args(x, x.half(), w, 1e-6), "residual dtype"


def test_operators_are_opaque_with_fake_kernels() -> None:
    """While tracing, the provider calls ``ir_rocm.aiter_*`` operators; their fake kernels give
    the outputs' metadata without calling AITER."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with standin_aiter() as standin:
        device = _device()
        x = random_rows([2, 3], 64, torch.bfloat16, device=device)
        w = random_rows([], 64, torch.bfloat16, device=device)
        graph = torch.fx.experimental.proxy_tensor.make_fx(
            lambda x, r, w: (
                aiter_provider.rms_norm_aiter(x, w, 1e-6),
                aiter_provider.fused_add_rms_norm_aiter(x, r, None, 1e-6),
            )
        )(x, x.clone(), w)
        targets = [str(n.target) for n in graph.graph.nodes if n.op == "call_function"]
        assert "ir_rocm.aiter_rms_norm.default" in targets, targets
        assert "ir_rocm.aiter_fused_add_rms_norm.default" in targets, targets
        calls_while_tracing = len(standin.calls)
        with FakeTensorMode() as mode:
            fake = mode.from_tensor(x)
            out = aiter_provider.rms_norm_aiter(fake, None, 1e-6)
            assert out.shape == x.shape
        assert len(standin.calls) == calls_while_tracing
        rows = x.view(-1, 64)
        torch.library.opcheck(torch.ops.ir_rocm.aiter_rms_norm.default, (rows, w, 1e-6))
        torch.library.opcheck(
            torch.ops.ir_rocm.aiter_fused_add_rms_norm.default, (rows, rows.clone(), None, 1e-6)
        )


STANDIN_PACKAGE = '''
"""A stand-in aiter that records its calls to the file in AITER_CALLS."""
import json, os
import torch

def _log(name, *tensors):
    record = [name, [list(t.shape) for t in tensors], [str(t.dtype) for t in tensors]]
    with open(os.environ["AITER_CALLS"], "a") as f:
        f.write(json.dumps(record) + "\\n")

def rms_norm(input, weight, epsilon):
    _log("rms_norm", input, weight)
    x = input.float()
    y = (x * torch.rsqrt(x.square().mean(-1, keepdim=True) + epsilon)).to(input.dtype)
    return (y.float() * weight.float()).to(input.dtype)

def rmsnorm2d_fwd_with_add(out, input, residual_in, residual_out, weight, epsilon):
    _log("rmsnorm2d_fwd_with_add", out, input, residual_in, residual_out, weight)
    residual_out.copy_(input.float() + residual_in.float())
    out.copy_(rms_norm(residual_out, weight, epsilon))
'''


def test_an_installed_aiter_is_found_and_called_in_a_fresh_process(tmp_path: Path) -> None:
    """Import-time registration through the entry point, the default priority, and a call."""
    _skip_if_real_aiter()
    (tmp_path / "aiter").mkdir()
    (tmp_path / "aiter" / "__init__.py").write_text(textwrap.dedent(STANDIN_PACKAGE))
    calls = tmp_path / "calls.jsonl"
    code = textwrap.dedent(
        """
        import torch
        from ir_op import ops, enable_torch_wrap
        x = torch.randn(2, 3, 64).to(torch.bfloat16)
        w = torch.randn(64).to(torch.bfloat16)
        print(ops.rms_norm.get_priority())
        with enable_torch_wrap(False):
            out = ops.rms_norm(x, w, 1e-6)
        assert out.shape == x.shape
        """
    )
    env = {
        **os.environ,
        "IR_OP_PLATFORM": "rocm",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "AITER_CALLS": str(calls),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("['aiter', ")
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    assert recorded == [["rms_norm", [[6, 64], [64]], ["torch.bfloat16", "torch.bfloat16"]]]


def test_the_ones_standing_in_for_no_weight_are_cached_outside_graph_capture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x = random_rows([3], 48, torch.float16)
    monkeypatch.setattr(aiter_provider, "_ones", {})
    monkeypatch.setattr(aiter_provider, "_capturing", lambda x: True)
    during_capture = aiter_provider._weight_or_ones(None, x)
    assert aiter_provider._ones == {}  # memory of a graph's pool is never kept
    monkeypatch.setattr(aiter_provider, "_capturing", lambda x: False)
    ones = aiter_provider._weight_or_ones(None, x)
    assert aiter_provider._weight_or_ones(None, x) is ones
    assert torch.equal(ones, during_capture) and torch.equal(ones, torch.ones(48).half())
    w = random_rows([], 48, torch.float16)
    assert aiter_provider._weight_or_ones(w, x) is w
