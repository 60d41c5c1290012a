"""KernelLauncher's key and cache logic on the CPU, with the GPU runtime seam injected.

A real ``JITFunction`` supplies the parameters and Triton's own specialization function computes
the keys; only compiling and launching are faked: ``kernel.run`` (Triton's launch) returns a
fake compiled kernel whose ``run`` records the fast launches. The GPU tests of ir-kernels-cuda
check the same paths on the hardware.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import torch

triton = pytest.importorskip("triton")
from triton._C.libtriton import native_specialize_impl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler.compiler import make_backend  # noqa: E402
from triton.runtime.jit import JITFunction, create_function_from_signature  # noqa: E402

from ir_triton import KernelLauncher, LaunchRuntime, fast_launch, set_fast_launch  # noqa: E402
from ir_triton import launcher as launcher_module  # noqa: E402

tl = triton.language
BACKEND = make_backend(GPUTarget("cuda", 90, 32))
STREAM = 4242


def scale_kernel(
    x_ptr,
    out_ptr,
    n,
    stride,
    factor,
    BLOCK: tl.constexpr,
    FLAG: tl.constexpr = False,
):
    offsets = tl.arange(0, BLOCK)
    tl.store(out_ptr + offsets * stride, tl.load(x_ptr + offsets, mask=offsets < n) * factor)


class FakeCompiled:
    """What launchers read from Triton's CompiledKernel."""

    def __init__(self, fast_runs: list[tuple[Any, ...]], number: int) -> None:
        self.function = 1000 + number
        self.packed_metadata = (4, 1, 0)
        self._fast_runs = fast_runs

    def run(self, *args: Any) -> None:
        self._fast_runs.append(args)


class Harness:
    """A real JITFunction whose compile-and-launch is recorded instead of run."""

    def __init__(self, device: int = -1) -> None:
        self.kernel = JITFunction(scale_kernel)
        self.slow: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []
        self.fast: list[tuple[Any, ...]] = []
        self.guards: list[int] = []
        self.device = device
        self.hooks = SimpleNamespace(launch_enter_hook=None, launch_exit_hook=None)

        def run(*args: Any, grid: Any, warmup: bool, **options: Any) -> FakeCompiled:
            self.slow.append((grid, args, options))
            return FakeCompiled(self.fast, len(self.slow))

        self.kernel.run = run  # type: ignore[method-assign]
        self.launcher = KernelLauncher(self.kernel, runtime=self.runtime())

    def runtime(self) -> LaunchRuntime:
        @contextmanager
        def guard(device: int) -> Iterator[None]:
            self.guards.append(device)
            yield

        return LaunchRuntime(
            current_device=lambda: self.device,
            current_stream=lambda device: STREAM,
            device_guard=guard,
            backend=lambda kernel, device: BACKEND,
            specialize=native_specialize_impl,
            hooks=self.hooks,
        )


def args_for(
    x: torch.Tensor | None = None, n: int = 32, stride: int = 1, block: int = 64, **extra: Any
) -> tuple[Any, ...]:
    x = torch.randn(64) if x is None else x
    return (x, torch.empty_like(x), n, stride, 2.0, block, *extra.values())


def test_first_sight_launches_through_triton_then_from_the_cache() -> None:
    h = Harness()
    x = torch.randn(64)
    out = torch.empty(64)
    h.launcher((3,), x, out, 32, 1, 2.0, 64, num_warps=4)
    assert len(h.slow) == 1 and h.fast == []
    grid, args, options = h.slow[0]
    assert grid == (3,) and options == {"num_warps": 4}
    assert args[0] is x and args[1] is out and args[2:] == (32, 1, 2.0, 64, False)

    h.launcher((5, 2), x, out, 48, 1, 3.0, 64, num_warps=4)
    assert len(h.slow) == 1
    # the launcher's positional convention: grid, stream, function, metadata, launch metadata,
    # enter and exit hooks, then every kernel argument (defaults filled, tensors as pointers)
    assert h.fast == [
        (5, 2, 1, STREAM, 1001, (4, 1, 0), None, None, None,
         x.data_ptr(), out.data_ptr(), 48, 1, 3.0, 64, False)
    ]  # fmt: skip
    assert h.launcher.cached_keys == 1 and h.launcher.slow_launches == 1


@pytest.mark.parametrize(
    "change",
    [
        "dtype",
        "misaligned pointer",
        "int not divisible by 16",
        "int equal to 1",
        "int wider than 32 bits",
        "constexpr value",
        "constexpr type",
        "defaulted constexpr",
        "launch option",
        "tensor becomes None",
    ],
)
def test_what_triton_specializes_on_gets_a_new_compile(change: str) -> None:
    h = Harness()
    base = [torch.randn(64), torch.empty(64), 32, 16, 2.0, 64]
    options: dict[str, Any] = {"num_warps": 4}
    h.launcher((1,), *base, **options)
    changed = list(base)
    if change == "dtype":
        changed[0] = torch.randn(64, dtype=torch.float16)
    elif change == "misaligned pointer":
        changed[0] = torch.randn(65)[1:]
    elif change == "int not divisible by 16":
        changed[2] = 33
    elif change == "int equal to 1":
        changed[3] = 1
    elif change == "int wider than 32 bits":
        changed[2] = 2**33
    elif change == "constexpr value":
        changed[5] = 128
    elif change == "constexpr type":
        changed[5] = 64.0
    elif change == "defaulted constexpr":
        changed.append(True)
    elif change == "launch option":
        options = {"num_warps": 8}
    elif change == "tensor becomes None":
        changed[1] = None
    h.launcher((1,), *changed, **options)
    assert len(h.slow) == 2, "a different specialization must not reuse the cached kernel"
    assert h.fast == []
    h.launcher((1,), *changed, **options)
    assert len(h.slow) == 2 and len(h.fast) == 1


def test_values_in_the_same_specialization_share_a_kernel() -> None:
    h = Harness()
    h.launcher((1,), *args_for(n=32, stride=48))
    h.launcher((1,), *args_for(n=4096, stride=16))  # both divisible by 16, other tensors
    h.launcher((1,), *args_for(n=17, stride=48))  # new: 17 is not divisible by 16
    h.launcher((1,), *args_for(n=19, stride=48))
    assert len(h.slow) == 2 and len(h.fast) == 2


_INTS = [0, 1, 2, 15, 16, 17, 32, 48, 2**31 - 16, 2**31, 2**33, -16, -1, 2**63, 2**64 - 1]


def test_the_key_is_exactly_tritons_specialization() -> None:
    """A call reuses a cached kernel if and only if Triton's own binder specializes it like an
    earlier call: the key is neither finer (needless compiles) nor coarser (wrong kernel)."""
    h = Harness()
    binder = create_function_from_signature(h.kernel.signature, h.kernel.params, BACKEND)
    tensors = [torch.randn(64), torch.randn(65)[1:], torch.randn(64, dtype=torch.bfloat16)]
    seen: set[tuple[Any, ...]] = set()
    for i, n in enumerate(_INTS):
        for j, stride in enumerate(_INTS):
            for flag in (False, True):
                args = (tensors[(i + j) % 3], tensors[j % 3], n, stride, 1.5, 64, flag)
                specialization = tuple(binder(*args)[1])
                compiles = len(h.slow)
                h.launcher((1,), *args)
                new_compile = len(h.slow) > compiles
                assert new_compile == (specialization not in seen), (n, stride, flag)
                seen.add(specialization)
    assert h.launcher.cached_keys == len(seen) > 100


def test_cpu_tensors_take_tritons_path() -> None:
    h = Harness(device=3)  # a GPU is current; CPU tensors report device -1
    for _ in range(2):
        h.launcher((1,), *args_for())
    assert len(h.slow) == 2 and h.guards == []  # Triton raises its own error for those
    assert h.launcher.cached_keys == 0


def test_a_device_switch_is_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(device=0)
    x = torch.randn(64)
    monkeypatch.setattr(torch.Tensor, "get_device", lambda self: 1)
    h.launcher((1,), x, torch.empty(64), 32, 1, 2.0, 64)
    assert h.guards == [1] and len(h.slow) == 1 and h.launcher.cached_keys == 0


def test_tensors_on_different_devices_take_tritons_path(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(device=0)
    x, out = torch.randn(64), torch.empty(64)
    monkeypatch.setattr(torch.Tensor, "get_device", lambda self: 0 if self is x else 1)
    for _ in range(2):
        h.launcher((1,), x, out, 32, 1, 2.0, 64)
    assert len(h.slow) == 2 and h.fast == []


def test_active_launch_hooks_take_tritons_path() -> None:
    h = Harness()
    h.hooks.launch_enter_hook = SimpleNamespace(calls=[])  # Triton's empty HookChain: inactive
    for _ in range(2):
        h.launcher((1,), *args_for())
    assert len(h.slow) == 1 and len(h.fast) == 1
    h.hooks.launch_enter_hook = SimpleNamespace(calls=[print])  # a profiler's hook
    h.launcher((1,), *args_for())
    assert len(h.slow) == 2
    h.hooks.launch_enter_hook = None
    h.hooks.launch_exit_hook = print  # a plain callable (older Triton): active
    h.launcher((1,), *args_for())
    assert len(h.slow) == 3 and len(h.fast) == 1


def test_fast_launch_switch() -> None:
    h = Harness()
    h.launcher((1,), *args_for())
    with fast_launch(False):
        h.launcher((1,), *args_for())
    assert len(h.slow) == 2 and h.fast == []
    h.launcher((1,), *args_for())
    assert len(h.fast) == 1
    set_fast_launch(False)
    try:
        h.launcher((1,), *args_for())
    finally:
        set_fast_launch(True)
    assert len(h.slow) == 3
    with pytest.raises(TypeError, match="fast launch must be True or False"):
        set_fast_launch("no")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("on", True), ("0", False), ("False", False)]
)
def test_fast_launch_environment_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("IR_OP_TRITON_FAST_LAUNCH", value)
    assert launcher_module._fast_launch_from_env() is expected
    monkeypatch.setenv("IR_OP_TRITON_FAST_LAUNCH", "maybe")
    with pytest.raises(ValueError, match="IR_OP_TRITON_FAST_LAUNCH='maybe' is not a switch"):
        launcher_module._fast_launch_from_env()


def test_grid_that_is_not_a_tuple_takes_tritons_path() -> None:
    h = Harness()
    for _ in range(2):
        h.launcher(lambda meta: (1,), *args_for())  # type: ignore[arg-type]
    assert len(h.slow) == 2 and h.fast == []


def test_unhashable_constexpr_takes_tritons_path() -> None:
    h = Harness()
    for _ in range(2):
        h.launcher((1,), *args_for(block=[64]))  # type: ignore[arg-type]
    assert len(h.slow) == 2 and h.launcher.cached_keys == 0


def test_interpreted_kernels_always_take_tritons_path() -> None:
    launched: list[Any] = []

    class Interpreted:
        """Anything indexable by a grid that is not a JITFunction (Triton's interpreter)."""

        def __getitem__(self, grid: Any) -> Any:
            return lambda *args, **options: launched.append((grid, args, options))

    launcher = KernelLauncher(Interpreted())
    for _ in range(2):
        launcher((2,), 1, 2, num_warps=4)
    assert launched == [((2,), (1, 2), {"num_warps": 4})] * 2
    assert launcher.slow_launches == 2


def test_changed_compiled_kernel_turns_the_fast_path_off(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()
    h.kernel.run = lambda *a, grid, warmup, **o: h.slow.append((grid, a, o)) or object()  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="ir_op"):
        for _ in range(3):
            h.launcher((1,), *args_for())
    assert len(h.slow) == 3
    assert "lacks run, function or packed_metadata" in str(h.launcher.fast_path_off_reason)
    assert sum("fast launch is off" in r.message for r in caplog.records) == 1


def test_launcher_that_rejects_the_call_falls_back_once(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()

    def rejecting_run(*args: Any) -> None:
        raise TypeError("function takes exactly 14 arguments")

    h.launcher((1,), *args_for())
    key = next(iter(h.launcher._entries))
    entry = h.launcher._entries[key]
    h.launcher._entries[key] = (rejecting_run, *entry[1:])
    with caplog.at_level(logging.WARNING, logger="ir_op"):
        h.launcher((1,), *args_for())
        h.launcher((1,), *args_for())
    assert len(h.slow) == 3  # the failed fast call was redone by Triton, then all go there
    assert "function takes exactly 14 arguments" in str(h.launcher.fast_path_off_reason)
    assert sum("fast launch is off" in r.message for r in caplog.records) == 1


def test_cache_size_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()
    h.launcher = KernelLauncher(h.kernel, max_entries=2, runtime=h.runtime())
    with caplog.at_level(logging.WARNING, logger="ir_op"):
        for block in (16, 32, 64, 64):
            h.launcher((1,), *args_for(block=block))
    assert h.launcher.cached_keys == 2 and len(h.slow) == 4
    assert sum("max_entries" in r.message for r in caplog.records) == 1
    with pytest.raises(ValueError, match="max_entries must be an int >= 1"):
        KernelLauncher(h.kernel, max_entries=0)


def test_kernels_with_pre_run_hooks_are_not_cached() -> None:
    h = Harness()
    h.kernel.add_pre_run_hook(lambda *args, **kwargs: None)
    for _ in range(2):
        h.launcher((1,), *args_for())
    assert len(h.slow) == 2 and h.launcher.cached_keys == 0


def test_runtime_that_cannot_start_turns_the_fast_path_off() -> None:
    h = Harness()

    def no_driver() -> LaunchRuntime:
        raise RuntimeError("0 active drivers")

    h.launcher = KernelLauncher(h.kernel, runtime=no_driver)
    for _ in range(2):
        h.launcher((1,), *args_for())
    assert len(h.slow) == 2
    assert h.launcher.fast_path_off_reason == "RuntimeError: 0 active drivers"


def test_first_parameter_must_be_a_tensor_for_the_fast_path() -> None:
    def constexpr_first(BLOCK: tl.constexpr, x_ptr):  # type: ignore[no-untyped-def]
        pass

    kernel = JITFunction(constexpr_first)
    launched: list[Any] = []
    kernel.run = lambda *a, grid, warmup, **o: launched.append(a)  # type: ignore[method-assign]
    launcher = KernelLauncher(kernel, runtime=Harness().runtime())
    launcher((1,), 16, torch.randn(4))
    assert launched and "first parameter" in str(launcher.fast_path_off_reason)


def test_not_a_kernel() -> None:
    with pytest.raises(TypeError, match="takes a @triton.jit kernel"):
        KernelLauncher(print)


def test_traced_launch_goes_through_wrap_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness()
    wrapped: list[Any] = []
    real_wrap = torch.library.wrap_triton

    def spy(kernel: Any) -> Any:
        wrapped.append(kernel)
        return real_wrap(kernel)

    monkeypatch.setattr(torch.library, "wrap_triton", spy)
    h.launcher.traced((2,), *args_for())
    assert wrapped == [h.kernel] and len(h.slow) == 1


class CudaLauncher:
    """Shaped like Triton 3.6's ``CudaLauncher``: a Python layer over a C ``launch`` function."""

    def __init__(self, scratch: int = 0) -> None:
        self.global_scratch_size = scratch
        self.profile_scratch_size = 0
        self.launch_cooperative_grid = False
        self.launch_pdl = True
        self.via_call: list[tuple[Any, ...]] = []
        self.via_launch: list[tuple[Any, ...]] = []

    def __call__(self, gridX: int, gridY: int, gridZ: int, stream: int, function: int, *args: Any):  # type: ignore[no-untyped-def]
        self.via_call.append((gridX, gridY, gridZ, stream, function, *args))

    def launch(self, *args: Any) -> None:
        self.via_launch.append(args)


CudaLauncher.__module__ = "triton.backends.nvidia.driver"


def _harness_with(launcher: CudaLauncher) -> Harness:
    h = Harness()

    class Compiled:
        function = 77
        packed_metadata = (4, 1, 0)
        run = launcher

    h.kernel.run = lambda *a, grid, warmup, **o: h.slow.append((grid, a, o)) or Compiled()  # type: ignore[method-assign]
    return h


@pytest.mark.parametrize("version", ["3.6.0", "3.7.1"])
def test_triton_36_launch_function_is_called_directly(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    monkeypatch.setattr(triton, "__version__", version)
    runner = CudaLauncher()
    h = _harness_with(runner)
    x, out = torch.randn(64), torch.empty(64)
    for _ in range(2):
        h.launcher((3,), x, out, 32, 1, 2.0, 64)
    args = (x.data_ptr(), out.data_ptr(), 32, 1, 2.0, 64, False)
    if version.startswith("3.6."):
        # grid, stream, function, cooperative, pdl, two scratch buffers, metadata, launch
        # metadata, two hooks: JITFunction.run's call as CudaLauncher.__call__ forwards it
        assert runner.via_launch == [
            (3, 1, 1, STREAM, 77, False, True, None, None, (4, 1, 0), None, None, None, *args)
        ]
        assert runner.via_call == []
    else:
        assert runner.via_call == [(3, 1, 1, STREAM, 77, (4, 1, 0), None, None, None, *args)]
        assert runner.via_launch == []


def test_kernels_with_scratch_memory_go_through_the_launcher_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(triton, "__version__", "3.6.0")
    runner = CudaLauncher(scratch=128)
    h = _harness_with(runner)
    for _ in range(2):
        h.launcher((1,), *args_for())
    assert len(runner.via_call) == 1 and runner.via_launch == []


# -- bound launchers ---------------------------------------------------------------------------


def test_bound_launch_goes_through_triton_once_then_from_its_cache() -> None:
    h = Harness()
    bound = h.launcher.bind(64, num_warps=4)  # BLOCK=64, FLAG defaulted
    x, out = torch.randn(64), torch.empty(64)
    bound.launch((3,), x, out, 32, 1, 2.0)
    assert len(h.slow) == 1
    grid, args, options = h.slow[0]
    assert grid == (3,) and options == {"num_warps": 4}
    assert args[0] is x and args[1] is out and args[2:] == (32, 1, 2.0, 64, False)
    bound.launch((5,), x, out, 48, 1, 3.0)
    assert len(h.slow) == 1
    assert h.fast == [
        (5, 1, 1, STREAM, 1001, (4, 1, 0), None, None, None,
         x.data_ptr(), out.data_ptr(), 48, 1, 3.0, 64, False)
    ]  # fmt: skip
    assert bound.launch.__doc__ is not None and "num_warps" not in bound.launch.__doc__
    assert h.launcher.cached_keys == 1


def test_bind_is_cached_by_value_and_type() -> None:
    h = Harness()
    assert h.launcher.bind(64, num_warps=4) is h.launcher.bind(64, False, num_warps=4)
    assert h.launcher.bind(64, num_warps=4) is not h.launcher.bind(64, num_warps=8)
    assert h.launcher.bind(64, True) is not h.launcher.bind(64, 1)  # Triton tells them apart
    with pytest.raises(TypeError, match="bind takes 2 constexprs, got 3"):
        h.launcher.bind(64, False, 1)
    with pytest.raises(TypeError, match="bind needs constexpr 'BLOCK'"):
        h.launcher.bind()


def test_bound_constexprs_in_the_middle_are_put_in_place() -> None:
    def middle(x_ptr, BLOCK: tl.constexpr, n, FLAG: tl.constexpr = True):  # type: ignore[no-untyped-def]
        pass

    kernel = JITFunction(middle)
    calls: list[tuple[Any, ...]] = []
    kernel.run = lambda *a, grid, warmup, **o: calls.append(a) or FakeCompiled([], 1)  # type: ignore[method-assign]
    launcher = KernelLauncher(kernel, runtime=Harness().runtime())
    x = torch.randn(4)
    launcher.bind(16).launch((1,), x, 7)
    assert calls == [(x, 16, 7, True)]


def test_bound_launch_of_another_specialization_compiles_it() -> None:
    h = Harness()
    bound = h.launcher.bind(64)
    bound.launch((1,), torch.randn(64), torch.empty(64), 32, 16, 2.0)
    bound.launch((1,), torch.randn(65)[1:], torch.empty(64), 32, 16, 2.0)  # misaligned
    bound.launch((1,), torch.randn(64), torch.empty(64), 33, 16, 2.0)  # 33: not 16k
    bound.launch((1,), torch.randn(64), None, 32, 16, 2.0)  # None
    assert len(h.slow) == 4 and h.fast == []


def test_bound_launches_follow_the_switch_and_turning_off() -> None:
    h = Harness()
    bound = h.launcher.bind(64)
    bound.launch((1,), *args_for()[:5])
    with fast_launch(False):
        bound.launch((1,), *args_for()[:5])
    assert len(h.slow) == 2 and h.fast == []
    h.launcher._turn_off("test")
    bound.launch((1,), *args_for()[:5])
    bound.launch((1,), *args_for()[:5])
    assert len(h.slow) == 4 and h.fast == [] and h.launcher.cached_keys == 0


def test_bound_and_unbound_launches_under_the_interpreter() -> None:
    launched: list[Any] = []

    def body(x_ptr, n, BLOCK: tl.constexpr, FLAG: tl.constexpr = False):  # type: ignore[no-untyped-def]
        pass

    class Interpreted:
        """Triton's InterpretedFunction: a ``fn`` and ``[grid]``, no Triton parameters."""

        fn = body

        def __getitem__(self, grid: Any) -> Any:
            return lambda *args, **options: launched.append((grid, args, options))

    launcher = KernelLauncher(Interpreted())
    launcher.bind(32, num_warps=2).launch((2,), "x", 5)
    assert launched == [((2,), ("x", 5, 32, False), {"num_warps": 2})]


def test_bound_traced_launch_puts_every_argument_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness()
    seen: list[Any] = []
    monkeypatch.setattr(
        KernelLauncher, "traced", lambda self, grid, *a, **o: seen.append((grid, a, o))
    )
    x, out = torch.randn(64), torch.empty(64)
    h.launcher.bind(64, num_warps=4, launch_pdl=False).traced((2,), x, out, 32, 1, 2.0)
    assert seen == [((2,), (x, out, 32, 1, 2.0, 64, False), {"num_warps": 4, "launch_pdl": False})]


def test_traced_launch_drops_a_false_launch_pdl(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness()
    wrapped: list[Any] = []
    monkeypatch.setattr(
        torch.library, "wrap_triton", lambda kernel: wrapped.append(kernel) or h.kernel
    )
    h.launcher.traced((2,), *args_for(), num_warps=4, launch_pdl=False)
    assert h.slow[-1][2] == {"num_warps": 4}
    with pytest.raises(ValueError, match="a traced launch cannot use launch_pdl"):
        h.launcher.traced((2,), *args_for(), launch_pdl=True)


def test_a_profiler_hook_sends_bound_launches_to_triton() -> None:
    h = Harness()
    bound = h.launcher.bind(64)
    for _ in range(2):
        bound.launch((1,), *args_for()[:5])
    assert len(h.fast) == 1
    h.hooks.launch_enter_hook = SimpleNamespace(calls=[print])
    bound.launch((1,), *args_for()[:5])
    assert len(h.slow) == 2 and len(h.fast) == 1


# -- the key against Triton's binder, over kernels with every kind of parameter ------------------


def flags_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    y_ptr,
    unaligned_ptr,
    n,
    m,
    count,
    scale: tl.float32,
    flag: tl.int1,
    BLOCK: tl.constexpr,
    EXTRA: tl.constexpr = 3,
):
    pass


def _flags_harness() -> Harness:
    h = Harness()
    h.kernel = JITFunction(
        flags_kernel, do_not_specialize=["count"], do_not_specialize_on_alignment=["unaligned_ptr"]
    )

    def run(*args: Any, grid: Any, warmup: bool, **options: Any) -> FakeCompiled:
        h.slow.append((grid, args, options))
        return FakeCompiled(h.fast, len(h.slow))

    h.kernel.run = run  # type: ignore[method-assign]
    h.launcher = KernelLauncher(h.kernel, runtime=h.runtime(), max_entries=4096)
    return h


_VALUES: dict[str, list[Any]] = {
    "int": [0, 1, 2, 15, 16, 17, 48, 2**31 - 16, 2**31 - 1, 2**31, 2**32, -16, -1, -(2**31),
            -(2**31) - 16, 2**63, 2**64 - 16],
    "other": [None, 1.5, 0.0, True, False],
}  # fmt: skip


def _tensors() -> list[Any]:
    return [
        torch.randn(64),
        torch.randn(65)[1:],
        torch.randn(72)[8:],  # aligned, not at the start of its storage
        torch.randn(64, dtype=torch.bfloat16),
        torch.randn(66, dtype=torch.bfloat16)[1:],
        torch.nn.Parameter(torch.randn(64)),
        None,
    ]


@pytest.mark.parametrize("mode", ["launch", "bind"])
def test_equal_keys_if_and_only_if_triton_specializes_alike(mode: str) -> None:
    """Random calls mixing every kind of argument in every position: a call compiles (takes
    Triton's launch) exactly when Triton's own binder gives a specialization not seen before,
    for the launcher and for bound launchers (whose constexprs are fixed per binding)."""
    import random

    rng = random.Random(1234)
    h = _flags_harness()
    binder = create_function_from_signature(h.kernel.signature, h.kernel.params, BACKEND)
    tensors = _tensors()
    ints, others = _VALUES["int"], _VALUES["other"]
    seen: set[Any] = set()
    for _ in range(1500):
        block = rng.choice([32, 64])
        extra = rng.choice([3, True, 1])
        args = (
            rng.choice(tensors[:-1]),
            rng.choice(tensors),
            rng.choice(tensors),
            rng.choice(ints + others[:2]),
            rng.choice(ints),
            rng.choice(ints),
            rng.choice([1.5, 0.25, -3.0]),
            rng.choice([True, False]),
        )
        specialization = (tuple(binder(*args, block, extra)[1]), block, type(extra), extra)
        compiles = len(h.slow)
        if mode == "launch":
            h.launcher((1,), *args, block, extra, num_warps=4)
        else:
            h.launcher.bind(block, extra, num_warps=4).launch((1,), *args)
        assert (len(h.slow) > compiles) == (specialization not in seen), (args, block, extra)
        seen.add(specialization)
    assert h.launcher.cached_keys == len(seen) > 200


def test_an_annotated_parameter_is_keyed_by_the_kind_of_its_argument() -> None:
    """Triton types an annotated float parameter alike whatever it is given; the launcher keys it
    by the argument's kind too, so a None or an int there (which the compiled launcher would
    refuse) takes Triton's launch, which raises its own error, instead of a cached kernel."""
    h = _flags_harness()
    x = torch.randn(64)
    for scale in (1.5, 2.5, None, 2, None):
        h.launcher((1,), x, x, x, 32, 32, 32, scale, True, 32, num_warps=4)
    assert len(h.slow) == 3 and len(h.fast) == 2
