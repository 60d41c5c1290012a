"""Host time per eager call of ``rms_norm`` at 1x4096 bf16, through ir_op dispatch, torch wrap off.

    python packages/ir-kernels-cuda/benchmarks/host_overhead.py [--breakdown] [--json FILE]
    python packages/ir-kernels-cuda/benchmarks/host_overhead.py --emulate [--breakdown]

Measured in one run, on the same tensors (the summary):

- ``ops.rms_norm`` dispatching to the cuda provider, which launches through ir_triton's fast
  path (the target: at most 8 us);
- the same with the fast path off, so the provider launches with Triton's own ``kernel[grid]``;
- the bare launches without dispatch or allocation: the fast launcher, and ``kernel[grid]``;
- ``torch.nn.functional.rms_norm`` and the op's native implementation (dispatched, wrap off);
- for reference: ``ops.rms_norm`` with torch wrap on (through the dispatcher), the in-place
  ``fused_add_rms_norm.maybe_inplace`` with wrap off and on, and ``empty_like``.

``--breakdown`` adds one row per stage of the fast path, each timed alone, so that one run says
where the time goes: the dispatch (``IrOp.__call__`` and ``supports_args``), the provider
(``tracing()``, the output allocation, the launch preparation), the launcher's Python (key,
lookup; measured with a grid of zero programs, for which Triton's C launch function returns
before calling the driver) and the C launch function with the driver call, called alone with
prepared arguments: the floor of any Triton launch. It also times each stage with autograd's
dispatch keys excluded (as they are inside a torch operator's kernel, which is why the wrap-on
path can beat the wrap-off one) and prints cProfile's view of the call.

``--emulate`` runs on the CPU without a GPU: the platform is the emulated CUDA one, Triton
compiles nothing and the launchers get a fake compiled kernel whose C launch function is a
no-op Python function (``EmulatedLaunch``). It measures the Python side of the same stages; the
C launch and the driver are not in it.

A row's number is the wall time of a loop of calls, divided by the number of calls, between two
synchronizations, median over repeats (``--emulate``: the process's CPU time, minimum over
repeats, as the CPU may be shared). Each call
enqueues about 2 us of GPU work; a row whose host time falls under the GPU time per call would
measure the GPU instead, so the GPU time per call of the launching rows is printed next to them.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

TARGET_US = 8.0
HIDDEN = 4096
EPS = 1e-6


def _prepare_emulation() -> None:
    """Before ir_op is imported: the emulated CUDA platform, Triton compiling (not interpreting)."""
    os.environ["IR_OP_PLATFORM"] = "cuda"
    os.environ.pop("TRITON_INTERPRET", None)


if __name__ == "__main__" and "--emulate" in sys.argv:
    _prepare_emulation()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import triton  # noqa: E402

from ir_kernels_cuda import norm  # noqa: E402
from ir_op import enable_torch_wrap, ops  # noqa: E402
from ir_triton import BoundLauncher, KernelLauncher, fast_launch, tracing  # noqa: E402

# -- emulation ------------------------------------------------------------------------------------


class EmulatedLaunch:
    """Stands in for Triton 3.6's ``CudaLauncher`` on a machine without a GPU: the launcher takes
    its direct path and calls :meth:`launch` (the C function's place) with every argument."""

    def __init__(self) -> None:
        self.global_scratch_size = 0
        self.profile_scratch_size = 0
        self.launch_cooperative_grid = False
        self.launch_pdl = False
        self.calls = 0

    def __call__(
        self, gridX: Any, gridY: Any, gridZ: Any, stream: Any, function: Any, *args: Any
    ) -> None:
        self.calls += 1

    def launch(self, *args: Any) -> None:
        self.calls += 1


EmulatedLaunch.__name__ = EmulatedLaunch.__qualname__ = "CudaLauncher"
EmulatedLaunch.__module__ = "triton.backends.nvidia.driver"


class _EmulatedCompiled:
    function = 1
    packed_metadata = (8, 1, 0)

    def __init__(self, run: EmulatedLaunch) -> None:
        self.run = run


def emulate_launchers(launchers: list[KernelLauncher]) -> EmulatedLaunch:
    """Make ``launchers`` launch into :class:`EmulatedLaunch` (CPU tensors, no compile)."""
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import GPUTarget
    from triton.compiler.compiler import make_backend

    from ir_triton import LaunchRuntime

    backend = make_backend(GPUTarget("cuda", 90, 32))
    fake = EmulatedLaunch()
    runtime = LaunchRuntime(
        current_device=lambda: -1,  # CPU tensors report device -1
        current_stream=lambda device: 0,
        device_guard=lambda device: contextlib.nullcontext(),
        backend=lambda kernel, device: backend,
        specialize=native_specialize_impl,
        hooks=triton.knobs.runtime,
    )
    for launcher in launchers:
        launcher.kernel.run = lambda *a, grid, warmup, **o: _EmulatedCompiled(fake)
        launcher._runtime_source = runtime
        launcher.clear()
    for op in (ops.rms_norm, ops.fused_add_rms_norm, ops.gelu_and_mul_sparse):
        for impl in op.impls.values():
            impl._support = (True, None)  # the provider is unsupported without the interpreter
    return fake


# -- timing ---------------------------------------------------------------------------------------


def host_us_per_call(
    fn: Callable[[], Any], calls: int, repeats: int, sync: Callable[[], None], emulated: bool
) -> float:
    """Wall time per call, median of repeats; emulated: this process's CPU time per call,
    minimum of repeats (the CPU is shared, and no GPU work is waited for)."""
    clock = time.process_time if emulated else time.perf_counter
    for _ in range(200):
        fn()
    sync()
    samples = []
    for _ in range(repeats):
        sync()
        start = clock()
        for _ in range(calls):
            fn()
        samples.append((clock() - start) / calls * 1e6)
        sync()
    return min(samples) if emulated else statistics.median(samples)


def gpu_us_per_call(fn: Callable[[], Any], calls: int) -> float:
    """GPU time per call of a loop of ``fn`` (events around the loop)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return float(start.elapsed_time(end)) * 1e3 / calls


@contextlib.contextmanager
def _no_autograd_keys() -> Iterator[None]:
    """Autograd's dispatch keys excluded, as inside a torch operator's CompositeExplicitAutograd
    kernel (the wrap-on path)."""
    with torch._C._AutoDispatchBelowADInplaceOrView():
        yield


class _Recorder:
    """Wraps a launcher's ``launch`` to record the arguments of the calls that go through it."""

    def __init__(self, launcher: KernelLauncher | BoundLauncher) -> None:
        self.launcher = launcher
        self.seen: tuple[tuple[Any, ...], tuple[Any, ...], dict[str, Any]] | None = None

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        inner = self.launcher.launch

        def spy(grid: Any, *args: Any, **options: Any) -> None:
            self.seen = (grid, args, options)
            inner(grid, *args, **options)

        self.launcher.launch = spy
        try:
            yield
        finally:
            self.launcher.launch = inner


def _bound_rows_launcher(x: torch.Tensor, w: torch.Tensor) -> BoundLauncher:
    """The bound launcher that ``ops.rms_norm(x, w, EPS)`` launches through (after one call)."""
    ops.rms_norm(x, w, EPS)
    for key, plan in norm.NORM.plans.items():
        if key[:4] == (x.shape[-1], None, True, False):
            return plan[2]
    raise RuntimeError("ops.rms_norm made no launch plan: it did not reach the cuda provider")


def _c_launch_entry(launcher: BoundLauncher) -> tuple[Any, ...] | None:
    entries = list(launcher._entries.values())
    return entries[0] if len(entries) == 1 else None


def breakdown_rows(
    x: torch.Tensor,
    w: torch.Tensor,
    measure: Callable[[str, Callable[[], Any]], float],
) -> None:
    """Time each stage of ``ops.rms_norm(x, w, EPS)`` on its fast path alone."""
    op = ops.rms_norm
    impl = op.impls["cuda"]
    out = torch.empty_like(x)
    bound = _bound_rows_launcher(x, w)
    recorder = _Recorder(bound)
    with recorder.recording():
        op(x, w, EPS)
    assert recorder.seen is not None, "the provider did not launch the rows kernel"
    grid, kernel_args, _ = recorder.seen
    empty_grid = (0, *grid[1:])

    measure("stage: ops.rms_norm(x, w, eps), all of it", lambda: op(x, w, EPS))
    measure("stage: op.dispatch (supports_args included)", lambda: op.dispatch(x, w, EPS))
    check = impl._supports_args
    assert check is not None
    measure("stage: supports_args", lambda: check(x, w, EPS))
    measure("stage: provider (tracing, allocation, launch)", lambda: impl.impl_fn(x, w, EPS))
    measure("stage: tracing()", tracing)
    measure("stage: torch.empty_like(x)", lambda: torch.empty_like(x))
    measure(
        "stage: normalize (preparation + launcher)",
        lambda: norm.NORM.normalize(x, None, w, out, None, EPS, None, False),
    )
    measure(
        "stage: bound launcher (key, lookup, C launch)", lambda: bound.launch(grid, *kernel_args)
    )
    measure(
        "stage: bound launcher, grid of 0 (no driver call)",
        lambda: bound.launch(empty_grid, *kernel_args),
    )
    full_args = bound._all_args(kernel_args)
    launch = norm.NORM.rows_launcher.launch
    measure(
        "stage: unbound launcher (constexprs and options in the key)",
        lambda: launch(grid, *full_args, **bound.options),
    )
    entry = _c_launch_entry(bound)
    if entry is not None and entry[3]:
        c_launch, function, metadata, _, cooperative, pdl = entry
        stream = norm.NORM.rows_launcher._runtime.current_stream(x.get_device())  # type: ignore[union-attr]
        pointers = [a.data_ptr() if isinstance(a, torch.Tensor) else a for a in full_args]
        head = (function, cooperative, pdl, None, None, metadata, None, None, None)
        measure(
            "stage: C launch function alone (driver call included)",
            lambda: c_launch(grid[0], 1, 1, stream, *head, *pointers),
        )
        measure(
            "stage: C launch function alone, grid of 0 (argument parsing)",
            lambda: c_launch(0, 1, 1, stream, *head, *pointers),
        )
    else:
        print("(no direct C launch entry: Triton is not 3.6, or the kernel has scratch memory)")
    runtime = norm.NORM.rows_launcher._runtime
    if runtime is not None:
        device = x.get_device()
        measure("primitive: current_device()", runtime.current_device)
        measure("primitive: current_stream(device)", lambda: runtime.current_stream(device))
    measure("primitive: x.data_ptr()", x.data_ptr)
    measure("primitive: x.get_device()", x.get_device)
    with _no_autograd_keys():
        measure("no autograd keys: ops.rms_norm(x, w, eps)", lambda: op(x, w, EPS))
        measure("no autograd keys: torch.empty_like(x)", lambda: torch.empty_like(x))
    with enable_torch_wrap(True):
        measure("wrap on: ops.rms_norm(x, w, eps)", lambda: op(x, w, EPS))


def cprofile_report(fn: Callable[[], Any], calls: int = 20000, top: int = 25) -> str:
    """cProfile's view of ``calls`` calls of ``fn`` (its own overhead inflates every row)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def bare_launch_rows(
    x: torch.Tensor, w: torch.Tensor, measure: Callable[[str, Callable[[], Any]], float]
) -> None:
    """The launch alone (fast and Triton's), and the references, on the GPU."""
    op = ops.rms_norm
    bound = _bound_rows_launcher(x, w)
    recorder = _Recorder(bound)
    with op.set_priority(["cuda"]), enable_torch_wrap(False), recorder.recording():
        op(x, w, EPS)
    assert recorder.seen is not None
    grid, kernel_args, _ = recorder.seen
    full_args = bound._all_args(kernel_args)
    measure(
        "bare fast launch (no dispatch, no allocation)",
        lambda: bound.launch(grid, *kernel_args),
    )
    measure(
        "bare Triton kernel[grid](...) (no dispatch, no allocation)",
        lambda: norm.NORM.rows_launcher.kernel[grid](*full_args, **bound.options),
    )
    measure("F.rms_norm", lambda: F.rms_norm(x, (HIDDEN,), w, EPS))
    with op.set_priority(["native"]), enable_torch_wrap(False):
        measure("ops.rms_norm -> native (wrap off)", lambda: op(x, w, EPS))


def report(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    emulated: bool,
    fast_us: float,
    fast_path_taken: bool,
    profile: str,
) -> None:
    """Print the table (and the profile), and write ``--json``."""
    where = "CPU, emulated launch (Python side only)" if emulated else torch.cuda.get_device_name()
    print(
        f"{where}; torch {torch.__version__}, triton {triton.__version__}, "
        f"python {platform.python_version()}, {platform.processor() or platform.machine()}"
    )
    statistic = "minimum" if emulated else "median"
    print(f"rms_norm 1x{HIDDEN} bf16, {args.calls} calls x {args.repeats} repeats ({statistic})")
    print(f"{'host us/call':>12} {'gpu us/call':>11}  case")
    for row in rows:
        gpu = f"{row['gpu_us']:11.2f}" if "gpu_us" in row else " " * 11
        print(f"{row['host_us']:12.2f} {gpu}  {row['case']}")
    if emulated:
        print(f"fast path taken: {fast_path_taken}; Python side {fast_us:.2f} us per call")
    else:
        verdict = "meets" if fast_us <= TARGET_US and fast_path_taken else "MISSES"
        print(
            f"fast path taken: {fast_path_taken}; {fast_us:.2f} us per call {verdict} the "
            f"{TARGET_US} us target"
        )
    if args.breakdown:
        print("\ncProfile of ops.rms_norm (wrap off), 20000 calls, by own time:")
        print(profile)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "device": where,
                    "torch": torch.__version__,
                    "triton": triton.__version__,
                    "rows": rows,
                    "fast_path_taken": fast_path_taken,
                    "target_us": TARGET_US,
                },
                f,
                indent=2,
            )


# -- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--breakdown", action="store_true", help="time each stage alone")
    parser.add_argument("--emulate", action="store_true", help="CPU only, fake C launch")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    emulated = args.emulate
    device = "cpu" if emulated else "cuda"
    sync: Callable[[], None] = (lambda: None) if emulated else torch.cuda.synchronize
    launchers = [norm.NORM.rows_launcher, norm.NORM.fused_rows_launcher, norm.NORM.looped_launcher]
    if emulated:
        emulate_launchers(launchers)

    x = torch.randn(1, HIDDEN, device=device).to(torch.bfloat16)
    w = torch.randn(HIDDEN, device=device).to(torch.bfloat16)
    op = ops.rms_norm
    rows: list[dict[str, Any]] = []

    def measure(label: str, fn: Callable[[], Any]) -> float:
        us = host_us_per_call(fn, args.calls, args.repeats, sync, emulated)
        row: dict[str, Any] = {"case": label, "host_us": us}
        if not emulated and ("launch" in label or "ops.rms_norm" in label or "F." in label):
            row["gpu_us"] = gpu_us_per_call(fn, args.calls)
        rows.append(row)
        return us

    profile = ""
    with op.set_priority(["cuda"]), enable_torch_wrap(False):
        chosen = op.dispatch(x, w, EPS).provider
        if chosen != "cuda":
            raise SystemExit(f"ops.rms_norm dispatched to {chosen!r}, not cuda")
        op(x, w, EPS)
        slow_before = norm.NORM.rows_launcher.slow_launches
        fast_us = measure("ops.rms_norm -> cuda, fast launch (wrap off)", lambda: op(x, w, EPS))
        fast_path_taken = norm.NORM.rows_launcher.slow_launches == slow_before
        if not emulated:
            with fast_launch(False):
                measure("ops.rms_norm -> cuda, Triton launch (wrap off)", lambda: op(x, w, EPS))
        if args.breakdown:
            breakdown_rows(x, w, measure)
            profile = cprofile_report(lambda: op(x, w, EPS))
    if not emulated:
        bare_launch_rows(x, w, measure)
    with op.set_priority(["cuda"]), enable_torch_wrap(True):
        measure("ops.rms_norm -> cuda, fast launch (wrap on)", lambda: op(x, w, EPS))
    # maybe_inplace runs eager calls directly whatever the wrap flag (its torch operator, which
    # must not return its inputs, is for traced calls).
    fused, residual = ops.fused_add_rms_norm, torch.randn_like(x)
    with fused.set_priority(["cuda"]):
        for wrap in (False, True):
            with enable_torch_wrap(wrap):
                measure(
                    f"fused_add_rms_norm.maybe_inplace -> cuda, in place (wrap {wrap})",
                    lambda: fused.maybe_inplace(x, residual, w, EPS),
                )
    measure("torch.empty_like (allocation alone)", lambda: torch.empty_like(x))

    report(args, rows, emulated, fast_us, fast_path_taken, profile)


if __name__ == "__main__":
    main()
