"""``KernelLauncher``: launch compiled Triton kernels without ``kernel[grid](...)``'s host cost.

``JITFunction.run`` spends 14-17 us of host time per call on an H100 host (binding arguments,
reading knobs, building launch metadata, calling launch hooks, a driver call per pointer to
validate it), about ten times the GPU time of a decode-sized norm. A launcher does that work once
per *specialization* and then launches straight from a cache:

1. **Key.** A function generated once for the kernel's parameters computes, per call: the index
   of the device of the first argument (a tensor), for every other parameter the result of
   Triton's own specialization function (``native_specialize_impl``, called with the same
   ``is_const`` / ``specialize`` / ``align`` flags that Triton's binder uses: dtype, pointer
   alignment to 16 bytes, integers equal to 1, divisible by 16 or wider than 32 bits), for every
   ``tl.constexpr`` its type and value, and the launch options (``num_warps``...). That is
   Triton's own cache key, plus the device, so equal keys run the same compiled kernel.
2. **First sight of a key.** Triton's own launch, which compiles if needed and returns the
   ``CompiledKernel``; its launcher, function handle and packed metadata are stored under the key.
3. **Every later call.** The stored launcher is called with the positional convention of
   ``JITFunction.run`` (grid, stream, function, packed metadata, launch metadata, hooks,
   arguments), on ``torch``'s current stream of the device (so CUDA-graph capture records it),
   with tensors passed as their data pointers. Under Triton 3.6, for kernels without scratch
   memory, the C launch function under the launcher object is called directly instead (one
   Python layer less; see :func:`_direct_launch`).

The per-call function is generated once per kernel, as Triton generates its binder: straight-line
code for the kernel's parameters, with the kind of argument each parameter got in the first call
tested first, and Triton's answers for ``None`` and floats (which do not depend on the value)
computed once.

Triton's own launch runs instead (correct, slower) under the interpreter, while fast launch is
off (:func:`set_fast_launch`, ``IR_OP_TRITON_FAST_LAUNCH=0``), while a launch hook is installed
(a profiler), for a grid that is not a tuple, a constexpr that cannot be hashed, tensors on
different devices, or a full cache. When the first tensor is on another device than the current
one, Triton's launch runs under a guard for that device. If Triton's internals are not what this
module expects, the launcher logs once and keeps using Triton's launch.

Known limits (documented, not checked per call): Triton knobs read at compile time
(``TRITON_DEBUG``, instrumentation) are those of the first call of each key; kernels that read
module-level globals or have pre-run hooks are never cached (Triton re-checks those per call).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger("ir_op.triton")
"""A child of ir-op's logger: an application that configured ``ir_op`` logging sees these too."""

FAST_LAUNCH_ENV_VAR = "IR_OP_TRITON_FAST_LAUNCH"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _fast_launch_from_env() -> bool:
    value = os.environ.get(FAST_LAUNCH_ENV_VAR, "1").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{FAST_LAUNCH_ENV_VAR}={value!r} is not a switch; use one of {', '.join(_TRUE + _FALSE)}"
    )


class _Switch:
    """A mutable holder, so the generated hot path reads one attribute."""

    __slots__ = ("enabled",)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled


FAST_LAUNCH = _Switch(_fast_launch_from_env())


def fast_launch_enabled() -> bool:
    """Whether launchers may take their fast path (Triton's own launch when not)."""
    return FAST_LAUNCH.enabled


def set_fast_launch(enabled: bool) -> None:
    """Turn the fast path of every launcher on or off for the rest of the process."""
    if not isinstance(enabled, bool):
        raise TypeError(f"fast launch must be True or False, got {enabled!r}")
    FAST_LAUNCH.enabled = enabled


@contextlib.contextmanager
def fast_launch(enabled: bool) -> Iterator[None]:
    """Turn the fast path on or off inside a ``with`` block (restored on exit or error)."""
    if not isinstance(enabled, bool):
        raise TypeError(f"fast launch must be True or False, got {enabled!r}")
    old = FAST_LAUNCH.enabled
    FAST_LAUNCH.enabled = enabled
    try:
        yield
    finally:
        FAST_LAUNCH.enabled = old


@dataclass(frozen=True)
class LaunchRuntime:
    """What a launcher needs from Triton and the GPU runtime.

    :func:`default_runtime` builds it from Triton's active driver; tests inject fakes to check
    the key and cache logic without a GPU.
    """

    current_device: Callable[[], int]
    """Index of the current device (Triton launches there, as ``JITFunction.run`` does)."""
    current_stream: Callable[[int], int]
    """Raw handle of torch's current stream on a device (the capture stream while capturing)."""
    device_guard: Callable[[int], contextlib.AbstractContextManager[Any]]
    """Context manager making a device current."""
    backend: Callable[[Any, int], Any]
    """``(kernel, device) -> backend``: the object Triton's binder specializes with."""
    specialize: Callable[[Any, Any, bool, bool, bool], Any]
    """Triton's ``native_specialize_impl(backend, arg, is_const, specialize, align)``."""
    hooks: Any
    """An object with ``launch_enter_hook`` and ``launch_exit_hook`` (``triton.knobs.runtime``)."""


class TritonInternalsChanged(RuntimeError):
    """Triton's internals differ from what the fast path relies on."""


def _backend_from_device_caches(kernel: Any, device: int) -> Any:
    caches = kernel.device_caches[device]
    # JITFunction.create_binder: (kernel_cache, kernel_key_cache, target, backend, binder)
    if not isinstance(caches, tuple) or len(caches) != 5 or not hasattr(caches[3], "parse_attr"):
        raise TritonInternalsChanged(
            "JITFunction.device_caches entries are not (kernel_cache, key_cache, target, "
            "backend, binder)"
        )
    return caches[3]


def default_runtime() -> LaunchRuntime:
    """The runtime of Triton's active driver (raises if Triton has no active GPU driver)."""
    from triton import knobs
    from triton.runtime import driver

    try:
        from triton._C.libtriton import native_specialize_impl
    except ImportError as e:
        raise TritonInternalsChanged(f"triton._C.libtriton.native_specialize_impl: {e}") from e
    active = driver.active
    current_device = active.get_current_device
    raw_get_device = getattr(torch._C, "_cuda_getDevice", None)
    if current_device is torch.cuda.current_device and raw_get_device is not None:
        current_device = raw_get_device  # the same answer without the lazy-init check
    return LaunchRuntime(
        current_device=current_device,
        current_stream=active.get_current_stream,
        device_guard=active.get_device_interface().device,
        backend=_backend_from_device_caches,
        specialize=native_specialize_impl,
        hooks=knobs.runtime,
    )


def _is_jit_function(kernel: object) -> bool:
    from triton.runtime.jit import JITFunction

    return isinstance(kernel, JITFunction)


@dataclass(frozen=True)
class _Param:
    name: str
    constexpr: bool
    is_const: bool
    specialize: bool
    align: bool
    default: Any
    has_default: bool


def _params_of(kernel: Any) -> list[_Param]:
    """The facts Triton's binder uses for each parameter (``JITFunction.params``)."""
    params: list[_Param] = []
    try:
        for kp in kernel.params:
            annotation = kp.annotation_type
            specialize = not kp.do_not_specialize
            if isinstance(annotation, str) and (
                annotation == "u1" or annotation[:2] in ("fp", "bf")
            ):
                specialize = False  # Triton does not specialize annotated floats and bools
            params.append(
                _Param(
                    name=kp.name,
                    constexpr=bool(kp.is_constexpr),
                    is_const=bool(kp.is_const),
                    specialize=specialize,
                    align=not kp.do_not_specialize_on_alignment,
                    default=kp.default,
                    has_default=bool(kp.has_default),
                )
            )
    except AttributeError as e:
        raise TritonInternalsChanged(f"JITFunction.params: {e}") from e
    if not params or params[0].constexpr:
        raise TritonInternalsChanged(
            "the fast path needs the kernel's first parameter to be a tensor (it picks the device)"
        )
    return params


def _declared_params(kernel: Any) -> list[_Param]:
    """The kernel's parameters as declared (name, constexpr or not, default), for
    :meth:`KernelLauncher.bind`: Triton's facts for a ``JITFunction``, the Python signature of
    anything else with a ``fn`` (the interpreter's ``InterpretedFunction``)."""
    if _is_jit_function(kernel):
        return _params_of(kernel)
    fn = getattr(kernel, "fn", None)
    if fn is None:
        raise TypeError(f"cannot read the parameters of {kernel!r}")
    params = []
    for p in inspect.signature(getattr(fn, "__func__", fn)).parameters.values():
        annotation = p.annotation
        constexpr = "constexpr" in (
            annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        )
        has_default = p.default is not inspect.Parameter.empty
        params.append(
            _Param(p.name, constexpr, False, True, True, p.default if has_default else None,
                   has_default)
        )  # fmt: skip
    return params


_FLOAT_PROBES = (0.0, -0.0, 1.0, -1.0, 0.5, 1e-6, 3.0e38, 1e300, float("inf"), float("nan"))


def _value_blind_specializations(
    param: _Param, specialize: Callable[..., Any], backend: Any
) -> tuple[Any, Any]:
    """Triton's specialization of ``None`` for ``param``, and of a Python float if it does not
    depend on the value (checked on probes: this Triton types every float alike), else ``None``.

    The per-call function uses these instead of calling Triton for such arguments: the same
    answers, computed once.
    """
    flags = (param.is_const, param.specialize, param.align)
    none = specialize(backend, None, *flags)
    floats = {specialize(backend, value, *flags) for value in _FLOAT_PROBES}
    return none, (floats.pop() if len(floats) == 1 else None)


def _kind(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return "tensor"
    if value is None:
        return "none"
    return {int: "int", float: "float"}.get(type(value), "other")


_NAMED_OPTIONS = ("num_warps", "num_stages", "num_ctas", "launch_pdl", "maxnreg")
"""Triton launch options that become keyword parameters of the per-call function when the first
call passes them (any other option goes through ``**options``)."""

_UNSET = object()
"""Default of a launch option that the generated signature names (``num_warps``): not given."""

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def _hooks_active(hooks: Any) -> bool:
    """Whether a launch hook would run: Triton's ``HookChain`` with calls, or a plain callable
    (older Tritons kept a callable or ``None`` in the knob)."""
    for hook in (hooks.launch_enter_hook, hooks.launch_exit_hook):
        if hook is not None and getattr(hook, "calls", True):
            return True
    return False


def _merge_options(named: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The launch options as given: the named ones that were passed, and the others."""
    merged = {name: value for name, value in named.items() if value is not _UNSET}
    merged.update(options)
    return merged


def _tensor_key(p: _Param, a: str, ptr: str) -> str:
    """Key parts of a tensor argument: its dtype, and whether its data is 16-byte aligned where
    Triton specializes on that (``specialize`` and ``align``; Triton gives ``D`` then)."""
    if p.specialize and p.align:
        return f"{a}.dtype, {ptr} & 15 == 0"
    return f"{a}.dtype"


def _int_key(p: _Param, i: int, call: str, namespace: dict[str, Any]) -> str:
    """Key part of an int argument: Triton's specialization, taken from answers computed once
    for the common range (an int32 above 1: Triton's ``i32``, divisible by 16 or not) rather
    than by calling Triton."""
    a = f"a{i}"
    specialize, backend = namespace["specialize"], namespace["backend"]
    flags = (p.is_const, p.specialize, p.align)
    namespace[f"i32_16_{i}"] = specialize(backend, 32, *flags)
    namespace[f"i32_{i}"] = specialize(backend, 33, *flags)
    if namespace[f"i32_16_{i}"] == namespace[f"i32_{i}"]:  # not specialized on divisibility
        return f"i32_{i} if 1 < {a} <= I32_MAX else {call}"
    return f"(i32_{i} if {a} & 15 else i32_16_{i}) if 1 < {a} <= I32_MAX else {call}"


def _generate_fast_launch(
    params: list[_Param],
    namespace: dict[str, Any],
    first_args: tuple[Any, ...],
    option_names: tuple[str, ...] = (),
    bound: dict[int, Any] | None = None,
) -> Callable[..., None]:
    """Write the per-call function for these parameters (straight-line code: no loop, no dict).

    ``namespace`` provides: ``switch``, ``Tensor``, ``current_device``, ``current_stream``,
    ``hooks``, ``specialize``, ``backend``, ``entries``, ``slow``, ``broken``. ``first_args``
    (the first call's) decide which kind of argument each parameter is tested for first;
    ``option_names`` (the launch options of the first call, such as ``num_warps``) become
    keyword parameters, cheaper to pass and to key on than a ``**options`` dict.

    Each argument's part of the key is Triton's specialization of it or in one-to-one
    correspondence with it, computed without calling Triton where that is cheaper in Python: a
    tensor's dtype and 16-byte alignment; for an integer in the int32 range, Triton's answer
    computed once. (One exception, finer on purpose: Triton types a parameter annotated as a
    float or a bool alike whatever it gets, and the key also tells the argument's kind, so a
    ``None`` there, which the compiled launcher would refuse, takes Triton's launch and its
    error.) The key is flat where that saves time: a parameter whose first argument was an
    aligned-specialized tensor has two parts, dtype and alignment (``None`` as the second for
    its other kinds); every other parameter has one part, a constexpr two (type, value), all at
    fixed positions. Within a position, different kinds give different values (a torch dtype, a
    tuple from Triton, ``None``), so equal keys mean equal specializations and the other way
    round.

    ``bound`` (a bound launcher's: constexpr values by parameter index; the options are then
    ``namespace["bound_options"]``) takes those out of the signature and of the key: the
    function takes the grid and the runtime arguments only.
    """
    n = len(params)
    arg_names = [f"a{i}" for i in range(n)]
    signature = []
    for i, p in enumerate(params):
        if bound is not None and i in bound:
            namespace[f"a{i}"] = bound[i]  # a constant of the generated code
        elif p.has_default:
            namespace[f"default{i}"] = p.default
            signature.append(f"a{i}=default{i}")
        else:
            signature.append(f"a{i}")
    namespace["UNSET"] = _UNSET
    namespace["I32_MIN"], namespace["I32_MAX"] = _I32_MIN, _I32_MAX
    namespace["hooks_active"] = _hooks_active
    namespace["merge_options"] = _merge_options
    args_tuple = "(" + "".join(f"{a}, " for a in arg_names) + ")"
    if bound is None:
        option_params = "".join(f"{name}=UNSET, " for name in option_names)
        named = "{" + ", ".join(f"{name!r}: {name}" for name in option_names) + "}"
        options_expr = f"merge_options({named}, options)" if option_names else "options"
        star = "*, " if option_names else ""
        header = f"def fast_launch(grid, {', '.join(signature)}, {star}{option_params}**options):"
    else:
        options_expr = "dict(bound_options)"
        header = f"def fast_launch(grid, {', '.join(signature)}):"
    slow_call = f"return slow(grid, {args_tuple}, {options_expr}, None)"
    lines = [
        header,
        "    if not switch.enabled or type(grid) is not tuple or not isinstance(a0, Tensor):",
        f"        {slow_call}",
        "    try:  # Triton's HookChains: a profiler adds calls",
        "        hooked = hooks.launch_enter_hook.calls or hooks.launch_exit_hook.calls",
        "    except AttributeError:  # None or a plain callable in the knob",
        "        hooked = hooks_active(hooks)",
        "    if hooked:",
        f"        {slow_call}",
        "    dev = a0.get_device()",
        "    if dev != current_device():",
        f"        {slow_call}",
        "    p0 = a0.data_ptr()",
    ]
    key_parts = ["dev"]
    launch_args = []
    for i, p in enumerate(params):
        a = f"a{i}"
        if p.constexpr:
            if bound is None:
                key_parts += [f"type({a})", a]
            launch_args.append(a)
            continue
        seen = "tensor" if i == 0 else _kind(first_args[i] if i < len(first_args) else p.default)
        code, parts = _argument_lines(i, p, seen, namespace, slow_call)
        lines += code
        key_parts += parts
        launch_args.append(f"p{i}")
    if bound is None:
        key_parts += list(option_names)
        key_parts.append("tuple(options.items()) if options else None")
    lines += _launch_lines(key_parts, launch_args, args_tuple, options_expr, slow_call)
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<ir_triton fast launch>", "exec"), namespace)
    fn: Callable[..., None] = namespace["fast_launch"]
    fn.__doc__ = source  # the generated code, for debugging
    return fn


def _argument_lines(
    i: int, p: _Param, seen: str, namespace: dict[str, Any], slow_call: str
) -> tuple[list[str], list[str]]:
    """Generated code for the runtime argument ``a{i}``: it sets ``p{i}`` (what the launch
    passes: a data pointer for a tensor) and the argument's key parts, returned as names.

    ``seen`` is the kind of argument the first call passed there, tested first. A parameter that
    got an aligned-specialized tensor first keeps two key parts, dtype and alignment (flat: no
    tuple to build and hash); its other kinds fill the second with ``None``. Every other
    parameter has one part.
    """
    a = f"a{i}"
    call = f"specialize(backend, {a}, {p.is_const}, {p.specialize}, {p.align})"
    two = seen == "tensor" and p.specialize and p.align
    tensor_key = (
        f"s{i}, t{i} = {a}.dtype, p{i} & 15 == 0" if two
        else f"s{i} = {_tensor_key(p, a, f'p{i}')}"
    )  # fmt: skip
    parts = [f"s{i}", f"t{i}"] if two else [f"s{i}"]
    if i == 0:  # a tensor, checked by the caller
        return [f"    {tensor_key}"], parts
    none, floats = _value_blind_specializations(p, namespace["specialize"], namespace["backend"])
    namespace[f"none{i}"] = none
    no_second = f"; t{i} = None" if two else ""
    branches = {
        "int": (
            f"type({a}) is int",
            [f"p{i}, s{i} = {a}, {_int_key(p, i, call, namespace)}{no_second}"],
        ),
        "none": (f"{a} is None", [f"p{i}, s{i} = None, none{i}{no_second}"]),
        "tensor": (
            f"isinstance({a}, Tensor)",
            [
                f"if {a}.get_device() != dev:",
                f"    {slow_call}",
                f"p{i} = {a}.data_ptr()",
                tensor_key,
            ],
        ),
    }
    if floats is not None:
        namespace[f"float{i}"] = floats
        branches["float"] = (f"type({a}) is float", [f"p{i}, s{i} = {a}, float{i}{no_second}"])
    lines = []
    order = sorted(branches, key=lambda kind: kind != seen)
    for position, kind in enumerate(order):
        test, body = branches[kind]
        lines.append(f"    {'if' if position == 0 else 'elif'} {test}:")
        lines += [f"        {line}" for line in body]
    lines += ["    else:", f"        p{i}, s{i} = {a}, {call}{no_second}"]
    return lines, parts


def _launch_lines(
    key_parts: list[str],
    launch_args: list[str],
    args_tuple: str,
    options_expr: str,
    slow_call: str,
) -> list[str]:
    """Generated code that looks the key up and launches the cached kernel (or Triton's launch
    for a key not seen yet, which caches it)."""
    launch_tail = "".join(f"{x}, " for x in launch_args)
    return [
        f"    key = ({', '.join(key_parts)})",
        "    try:",
        "        entry = entries.get(key)",
        "    except TypeError:  # a constexpr that cannot be hashed: never cached",
        f"        {slow_call}",
        "    if entry is None:",
        f"        return slow(grid, {args_tuple}, {options_expr}, key)",
        "    launch, function, metadata, direct, cooperative, pdl = entry",
        "    if len(grid) == 1:",
        "        g0 = grid[0]",
        "        g1 = g2 = 1",
        "    else:",
        "        g0 = grid[0]",
        "        g1 = grid[1] if len(grid) > 1 else 1",
        "        g2 = grid[2] if len(grid) > 2 else 1",
        "    try:",
        "        if direct:  # Triton 3.6's C launch function itself",
        "            launch(g0, g1, g2, current_stream(dev), function, cooperative, pdl,",
        "                   None, None, metadata, None, None, None,",
        f"                   {launch_tail})",
        "        else:  # the compiled kernel's launcher object, as JITFunction.run calls it",
        "            launch(g0, g1, g2, current_stream(dev), function, metadata,",
        "                   None, None, None,",
        f"                   {launch_tail})",
        "    except (TypeError, AttributeError) as error:  # raised before anything is enqueued",
        f"        return broken(error, grid, {args_tuple}, {options_expr})",
    ]


_Entry = tuple[Callable[..., Any], Any, Any, bool, Any, Any]
"""What a key maps to: (callable, function handle, packed metadata, direct, cooperative grid,
programmatic dependent launch); the last two only matter for a direct launch."""

_CUDA_LAUNCHER_36_CALL = ["self", "gridX", "gridY", "gridZ", "stream", "function", "args"]


def _direct_launch(run: Any) -> tuple[Callable[..., Any], Any, Any] | None:
    """The C launch function under Triton 3.6's ``CudaLauncher``, when it may be called directly.

    ``CudaLauncher.__call__`` allocates scratch memory (none for kernels that need none) and
    forwards to the C function ``launch(grid x3, stream, function, cooperative, pdl,
    global scratch, profile scratch, packed metadata, launch metadata, enter hook, exit hook,
    *args)``; calling that function directly saves a Python layer per launch. Only for Triton
    3.6 (whose layout this is), a launcher whose class and call signature are exactly 3.6's, and
    kernels without scratch memory; otherwise ``None`` and the launcher object is called.
    """
    import triton

    if not str(triton.__version__).startswith("3.6."):
        return None
    cls = type(run)
    if cls.__name__ != "CudaLauncher" or not cls.__module__.startswith("triton.backends.nvidia"):
        return None
    try:
        if list(inspect.signature(cls.__call__).parameters) != _CUDA_LAUNCHER_36_CALL:
            return None
        if run.global_scratch_size or run.profile_scratch_size:
            return None
        launch, cooperative, pdl = run.launch, run.launch_cooperative_grid, run.launch_pdl
    except (AttributeError, TypeError, ValueError):
        return None
    return (launch, cooperative, pdl) if callable(launch) else None


class KernelLauncher:
    """Launches one ``@triton.jit`` kernel: ``launcher(grid, *args, **options)``.

    Equivalent to ``kernel[grid](*args, **options)`` with the kernel's parameters passed by
    position (every one, constexprs included, defaults allowed at the end) and Triton launch
    options (``num_warps=...``) as keywords; ``grid`` is a tuple of one to three ints. The first
    parameter must be a tensor: the kernel runs on its device, on torch's current stream there.
    :meth:`bind` fixes the constexprs and options once, for a cheaper launch of the rest.

    Create one per kernel at import (cheap: nothing touches the GPU before the first launch).
    Attributes for tests and diagnostics: :attr:`slow_launches` (launches that took Triton's own
    path), :attr:`cached_keys` and :attr:`fast_path_off_reason`.
    """

    def __init__(
        self,
        kernel: Any,
        *,
        max_entries: int = 1024,
        runtime: LaunchRuntime | Callable[[], LaunchRuntime] | None = None,
    ) -> None:
        if not callable(getattr(kernel, "__getitem__", None)):
            raise TypeError(f"KernelLauncher takes a @triton.jit kernel, got {kernel!r}")
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an int >= 1, got {max_entries!r}")
        self.kernel = kernel
        self.name = getattr(getattr(kernel, "fn", kernel), "__name__", repr(kernel))
        self.max_entries = max_entries
        self.slow_launches = 0
        self.fast_path_off_reason: str | None = None
        self._runtime_source = runtime if runtime is not None else default_runtime
        self._runtime: LaunchRuntime | None = None
        self._entries: dict[Any, _Entry] = {}
        self._bound: dict[Any, BoundLauncher] = {}
        self._lock = threading.RLock()
        self._warned: set[str] = set()
        self.launch: Callable[..., None] = self._first_launch

    def __call__(self, grid: tuple[int, ...], *args: Any, **options: Any) -> None:
        self.launch(grid, *args, **options)

    def __repr__(self) -> str:
        return f"KernelLauncher({self.name})"

    @property
    def cached_keys(self) -> int:
        """How many specializations launch without Triton's launch path (bound ones included)."""
        return len(self._entries) + sum(len(b._entries) for b in self._bound.values())

    def clear(self) -> None:
        """Forget the cached specializations (the compiled kernels stay in Triton's cache)."""
        self._entries.clear()
        for bound in self._bound.values():
            bound._entries.clear()

    def bind(self, *constexprs: Any, **options: Any) -> BoundLauncher:
        """The launch of this kernel with its constexprs (values in parameter order; trailing
        ones with defaults may be left out) and launch options fixed.

        ``bound.launch(grid, *runtime_args)`` (the kernel's other parameters, in order) is
        ``launcher.launch(grid, *all_args, **options)`` at a lower host cost: the constexprs and
        options are no part of its per-call key. Bound launchers are cached by their values;
        keep the returned object (per width, say) rather than binding per call.
        """
        params = _declared_params(self.kernel)
        positions = [i for i, p in enumerate(params) if p.constexpr]
        if len(constexprs) > len(positions):
            raise TypeError(
                f"{self.name}: bind takes {len(positions)} constexprs, got {len(constexprs)}"
            )
        values: dict[int, Any] = {}
        for i, position in enumerate(positions):
            if i < len(constexprs):
                values[position] = constexprs[i]
            elif params[position].has_default:
                values[position] = params[position].default
            else:
                raise TypeError(
                    f"{self.name}: bind needs constexpr {params[position].name!r} (no default)"
                )
        try:
            cache_key: Any = (tuple((type(v), v) for v in values.values()), tuple(options.items()))
            hash(cache_key)
        except TypeError:
            cache_key = None  # unhashable values: a bound launcher of its own, not cached
        bound = self._bound.get(cache_key) if cache_key is not None else None
        if bound is None:
            bound = BoundLauncher(self, params, values, options)
            if cache_key is not None:
                with self._lock:
                    bound = self._bound.setdefault(cache_key, bound)
        return bound

    # -- for torch.compile ---------------------------------------------------------------------

    def traced(self, grid: tuple[int, ...], *args: Any, **options: Any) -> None:
        """Launch through ``torch.library.wrap_triton``, the form that ``torch.compile`` traces
        (inside a ``torch.library.triton_op``); plain ``kernel[grid]`` under the interpreter.

        Takes the arguments of :meth:`launch`. ``launch_pdl=False`` (Triton's default) is
        dropped: Inductor's launches of user kernels do not take the option.
        """
        if "launch_pdl" in options:
            if options["launch_pdl"] is not False:
                raise ValueError(
                    f"{self.name}: a traced launch cannot use launch_pdl (Inductor launches "
                    "the kernel); pass launch_pdl=False"
                )
            options = {k: v for k, v in options.items() if k != "launch_pdl"}
        if _is_jit_function(self.kernel):
            from torch.library import wrap_triton

            wrap_triton(self.kernel)[grid](*args, **options)
        else:
            self.kernel[grid](*args, **options)

    # -- launch paths --------------------------------------------------------------------------

    def _first_launch(self, grid: tuple[int, ...], *args: Any, **options: Any) -> None:
        """Set up the fast path (once), then launch."""
        with self._lock:
            if self.launch == self._first_launch:
                self.launch = self._set_up(args, options)
        self.launch(grid, *args, **options)

    def _namespace(self, entries: dict[Any, _Entry]) -> dict[str, Any] | None:
        """What the generated code reads, or ``None`` when the fast path is off (logged)."""
        if not _is_jit_function(self.kernel) or self.fast_path_off_reason is not None:
            # The interpreter (TRITON_INTERPRET=1) or an autotuner: Triton's launch every time.
            return None
        try:
            source = self._runtime_source
            runtime = source if isinstance(source, LaunchRuntime) else source()
            device = runtime.current_device()
            namespace: dict[str, Any] = {
                "switch": FAST_LAUNCH,
                "Tensor": torch.Tensor,
                "current_device": runtime.current_device,
                "current_stream": runtime.current_stream,
                "hooks": runtime.hooks,
                "specialize": runtime.specialize,
                "backend": runtime.backend(self.kernel, device),
                "entries": entries,
                "broken": self._broken,
            }
            self._runtime = runtime
            return namespace
        except Exception as e:  # the fast path is an optimization: never fail a launch for it
            self._turn_off(f"{type(e).__name__}: {e}")
            return None

    def _set_up(
        self, first_args: tuple[Any, ...], first_options: dict[str, Any]
    ) -> Callable[..., None]:
        namespace = self._namespace(self._entries)
        if namespace is None:
            return self._plain_launch
        try:
            params = _params_of(self.kernel)
            namespace["slow"] = self._slow_launch
            named = tuple(name for name in _NAMED_OPTIONS if name in first_options)
            return _generate_fast_launch(params, namespace, first_args, named)
        except Exception as e:  # the fast path is an optimization: never fail a launch for it
            self._turn_off(f"{type(e).__name__}: {e}")
            return self._plain_launch

    def _plain_launch(self, grid: tuple[int, ...], *args: Any, **options: Any) -> None:
        """Triton's own launch, every time (interpreter, or fast path off)."""
        self._slow_launch(grid, args, options, None)

    def _slow_launch(
        self,
        grid: Any,
        args: tuple[Any, ...],
        options: dict[str, Any],
        key: Any,
        entries: dict[Any, _Entry] | None = None,
    ) -> None:
        """Triton's own launch; with ``key``, remember the compiled kernel under it (in
        ``entries``, the launcher's own by default)."""
        self.slow_launches += 1
        runtime = self._runtime
        guard: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        first = args[0] if args else None
        if runtime is not None and isinstance(first, torch.Tensor):
            device = first.get_device()
            if device >= 0 and device != runtime.current_device():
                guard = runtime.device_guard(device)
        with guard:
            compiled = self.kernel[grid](*args, **options)
        if key is not None and compiled is not None:
            self._remember(key, compiled, self._entries if entries is None else entries)

    def _remember(self, key: Any, compiled: Any, entries: dict[Any, _Entry]) -> None:
        kernel = self.kernel
        if getattr(kernel, "pre_run_hooks", None) or getattr(kernel, "used_global_vals", None):
            self._warn_once(
                "uncacheable",
                "ir_triton: kernel %s has pre-run hooks or reads module globals, which Triton "
                "re-checks on every launch; it always takes Triton's launch path",
            )
            return
        if hasattr(compiled, "result"):  # Triton's async compile mode hands back a future
            compiled = compiled.result()
        try:
            run, function, metadata = compiled.run, compiled.function, compiled.packed_metadata
        except AttributeError as e:
            self._turn_off(f"the compiled kernel lacks run, function or packed_metadata ({e})")
            return
        if not callable(run) or function is None:
            self._turn_off("the compiled kernel's launcher or function handle is missing")
            return
        direct = _direct_launch(run)
        entry: _Entry = (
            (direct[0], function, metadata, True, direct[1], direct[2])
            if direct is not None
            else (run, function, metadata, False, None, None)
        )
        if len(entries) >= self.max_entries:
            self._warn_once(
                "full",
                "ir_triton: kernel %s has more than max_entries specializations; new ones "
                "take Triton's launch path",
            )
            return
        entries[key] = entry

    def _broken(
        self, error: BaseException, grid: Any, args: tuple[Any, ...], options: dict[str, Any]
    ) -> None:
        """A cached launch failed before launching: Triton's launcher changed. Relaunch."""
        self._turn_off(
            f"calling the compiled kernel's launcher raised {type(error).__name__}: {error}"
        )
        self._slow_launch(grid, args, options, None)

    def _turn_off(self, reason: str) -> None:
        self.fast_path_off_reason = reason
        self.launch = self._plain_launch
        for bound in self._bound.values():
            bound.launch = bound._plain_launch
        self.clear()
        self._warn_once(
            "off",
            "ir_triton: fast launch is off for kernel %s (Triton's internals are not what it "
            "expects: %s); launches take Triton's own path, which is slower but correct",
            reason,
        )

    def _warn_once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(msg, self.name, *args)


class BoundLauncher:
    """A kernel's launch with its constexprs and launch options fixed (:meth:`KernelLauncher.bind`).

    ``bound.launch(grid, *runtime_args)`` takes the kernel's non-constexpr parameters in order;
    calling the object does the same. Its cache of compiled kernels is its own, keyed on the
    runtime arguments' specialization and the device only; everything else about the fast path
    (when it is taken, the fallback to Triton's launch) is the launcher's.
    """

    def __init__(
        self,
        owner: KernelLauncher,
        params: list[_Param],
        constexprs: dict[int, Any],
        options: dict[str, Any],
    ) -> None:
        self.owner = owner
        self.constexprs = constexprs
        self.options = dict(options)
        self._params = params
        self._entries: dict[Any, _Entry] = {}
        self.launch: Callable[..., None] = self._first_launch

    def __call__(self, grid: tuple[int, ...], *args: Any) -> None:
        self.launch(grid, *args)

    def __repr__(self) -> str:
        return f"BoundLauncher({self.owner.name}, {self.constexprs}, {self.options})"

    def traced(self, grid: tuple[int, ...], *args: Any) -> None:
        """:meth:`KernelLauncher.traced` with the bound constexprs and options (for code that
        ``torch.compile`` traces; bind those launches without ``launch_pdl``)."""
        self.owner.traced(grid, *self._all_args(args), **self.options)

    def _all_args(self, runtime_args: tuple[Any, ...]) -> tuple[Any, ...]:
        """The kernel's arguments in parameter order: the runtime ones and the bound ones."""
        given = iter(runtime_args)
        out = []
        for i, p in enumerate(self._params):
            if i in self.constexprs:
                out.append(self.constexprs[i])
            else:
                value = next(given, _UNSET)
                if value is _UNSET:
                    if not p.has_default:
                        break  # too few: Triton raises its own error
                    value = p.default
                out.append(value)
        return (*out, *given)

    def _first_launch(self, grid: tuple[int, ...], *args: Any) -> None:
        owner = self.owner
        with owner._lock:
            if self.launch == self._first_launch:
                self.launch = self._set_up(args)
        self.launch(grid, *args)

    def _set_up(self, first_args: tuple[Any, ...]) -> Callable[..., None]:
        owner = self.owner
        namespace = owner._namespace(self._entries)
        if namespace is None:
            return self._plain_launch
        try:
            namespace["slow"] = self._slow_launch
            namespace["bound_options"] = self.options
            full = self._all_args(first_args)
            return _generate_fast_launch(self._params, namespace, full, bound=self.constexprs)
        except Exception as e:  # the fast path is an optimization: never fail a launch for it
            owner._turn_off(f"{type(e).__name__}: {e}")
            return self._plain_launch

    def _plain_launch(self, grid: tuple[int, ...], *args: Any) -> None:
        self.owner._slow_launch(grid, self._all_args(args), dict(self.options), None)

    def _slow_launch(
        self, grid: Any, args: tuple[Any, ...], options: dict[str, Any], key: Any
    ) -> None:
        self.owner._slow_launch(grid, args, options, key, self._entries)
