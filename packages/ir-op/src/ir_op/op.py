"""``IrOp``: an op defined by a typed native PyTorch function, and ``register_op``.

The native function is the op's schema, its reference semantics, its fake (meta) kernel and its
last fallback. Providers register other implementations with :meth:`IrOp.register_impl`; a
per-op priority list, filtered once when it is set, picks one per call in :meth:`IrOp.dispatch`.

An op's priority has two layers: the process default (:meth:`IrOp.set_default`, or the defaults
applied on first use), and the priority of the innermost :meth:`IrOp.set_priority` block of the
calling thread or asyncio task (:mod:`ir_op.context`), which takes precedence.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Literal, TypeVar, overload

import torch

from ir_op import _loading
from ir_op._logging import logger, warning_once
from ir_op.composite import CompositeImpl, Composition
from ir_op.context import Overrides, assume_constant_result, current_overrides, priority_block
from ir_op.impl import IrOpImpl, Supported, SupportsArgs, UnsupportedReason
from ir_op.library import define_operator, get_library, ops_namespace
from ir_op.naming import NATIVE, RESERVED_PROVIDERS, UNFUSED, validate_name
from ir_op.signature import OpSignature
from ir_op.tolerances import DEFAULT_TOLERANCES, Tolerance
from ir_op.wrap import TORCH_WRAP, is_traced_call

InputGenerator = Callable[..., tuple[Any, ...]]
_F = TypeVar("_F", bound=Callable[..., Any])


_is_grad_enabled = torch.is_grad_enabled  # read on every call: one global lookup, not two

_OPS_BY_QUALNAME: weakref.WeakValueDictionary[str, IrOp] = weakref.WeakValueDictionary()
"""Every live op by ``namespace::name``, so a compile-time hook can find it from a string."""


def _apply_defaults_for_trace(qualname: str) -> tuple[str, ...]:
    """Apply an op's defaults from inside a Dynamo trace (torch wrap off, first use).

    Dynamo runs this eagerly and keeps the result as a constant: the loading of kernel sets and
    platform detection behind it are not traceable, and a constant tuple of names is.
    """
    return tuple(impl.provider for impl in _OPS_BY_QUALNAME[qualname]._initialize_priority())


@assume_constant_result
def _block_providers_while_tracing(qualname: str) -> tuple[str, ...] | None:
    """The providers of the compiling context's innermost block for an op, or ``None``: what
    :meth:`IrOp._priority_in` bakes into a traced graph (names: a constant Dynamo can keep)."""
    overrides = current_overrides()
    impls = None if overrides is None else overrides.priorities.get(qualname)
    return None if impls is None else tuple(impl.provider for impl in impls)


_default_providers_while_tracing: Callable[[str], tuple[str, ...]] = assume_constant_result(
    _apply_defaults_for_trace
)


def _ensure_kernels_loaded() -> None:
    # Imported here, not at the top: the platform layer builds on this module.
    from ir_op.platforms import ensure_kernels_loaded

    ensure_kernels_loaded()


def _as_provider_list(priority: object, op_name: str) -> list[str]:
    if isinstance(priority, str) or not isinstance(priority, Sequence):
        hint = (
            f"; did you mean {[p.strip() for p in priority.split(',')]}?"
            if isinstance(priority, str)
            else ""
        )
        raise TypeError(
            f"op {op_name!r}: a priority is a list of provider names, got {priority!r}{hint}"
        )
    providers: list[str] = []
    for p in priority:
        if not isinstance(p, str):
            raise TypeError(
                f"op {op_name!r}: provider names are strings, got {p!r} in {priority!r}"
            )
        if p in providers:
            raise ValueError(f"op {op_name!r}: provider {p!r} is listed twice in {list(priority)}")
        providers.append(p)
    return providers


class IrOp:
    """An IR op: a name, a native implementation, its providers and its dispatch priority.

    Build one with :func:`register_op`, which also puts it in :attr:`registry`. Calling the op
    first runs its :attr:`validate` (once, whichever provider follows), then, in grad mode with
    an argument that requires grad, the native implementation (or, for an op declared
    ``differentiable=False``, a ``ValueError``); otherwise ``torch.ops.<ns>.<name>.default``
    while torch wrap is on, and the chosen implementation directly while it is off.
    """

    registry: ClassVar[dict[str, IrOp]] = {}
    """Every op made by :func:`register_op`, by name."""

    allow_inplace: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        native_impl: Callable[..., Any],
        activations: Sequence[str] | None = None,
        *,
        schema: str | None = None,
        composite_of: Sequence[IrOp] | None = None,
        validate: Callable[..., None] | None = None,
        differentiable: bool = True,
    ) -> None:
        validate_name(name, "op")
        if not isinstance(differentiable, bool):
            raise TypeError(f"op {name!r}: differentiable must be a bool, got {differentiable!r}")
        # A composite op's native_impl is its composition (see ir_op.composite); the op's own
        # native function is that composition run over the components' native functions.
        composition = (
            Composition(name, native_impl, composite_of) if composite_of is not None else None
        )
        if composition is not None:
            native_impl = composition.native
        signature = OpSignature.of_native(name, native_impl, schema)
        params = signature.parameter_names
        if activations is None:
            # Convention shared with vLLM IR: parameters named x... are the activations.
            activations = [p for p in params if p.startswith("x")]
        elif isinstance(activations, str) or not all(isinstance(a, str) for a in activations):
            raise TypeError(f"op {name!r}: activations must be a list of parameter names")
        unknown = [a for a in activations if a not in params]
        if unknown:
            raise ValueError(
                f"op {name!r}: activation {unknown[0]!r} is not a parameter; parameters: {params}"
            )

        self.name = name
        self.signature = signature
        self.activations: list[str] = list(activations)
        self.activation_indices: list[int] = signature.activation_indices(self.activations)
        self._docstring = inspect.getdoc(native_impl) or ""
        self._validate_overloads()
        if validate is not None:
            signature.check_predicate(validate, "validate", what=f"op {name!r}: validate")
        self.validate: Callable[..., None] | None = validate
        """Raises ``TypeError``/``ValueError`` for bad arguments; run once per call, first."""
        self.differentiable = differentiable
        self._tensor_positions = signature.tensor_positions()

        library = get_library()
        if hasattr(ops_namespace(library), name):
            raise ValueError(
                f"op {name!r} is already defined in torch.ops.{library.ns}; choose another name"
            )

        self.native_fn = native_impl
        self.composition = composition
        self.impls: dict[str, IrOpImpl] = {}
        if composition is None:
            self.impls[NATIVE] = IrOpImpl(self, NATIVE, native_impl)
        else:
            self.impls[NATIVE] = CompositeImpl(self, NATIVE, composition)
            self.impls[UNFUSED] = CompositeImpl(self, UNFUSED, composition)
        self._fake_fn: Callable[..., Any] = native_impl
        self._priority_impls: list[IrOpImpl] | None = None  # None: defaults not applied yet
        self._priority_from_user = False
        self._warned: set[str] = set()
        self._input_generator: InputGenerator | None = None
        self._tolerance_overrides: dict[torch.dtype, Tolerance] = {}

        # Torch removes a library's operators when the library is collected: the op keeps the
        # one it was defined in (``use_namespace`` makes short-lived ones) alive as long as itself.
        self._library = library
        self.torch_op: torch._ops.OpOverload = self._define(
            library, "", signature.schema, self._call_default, self._fake_call
        )
        self._define_overloads(library)
        self._qualname = f"{library.ns}::{name}"
        _OPS_BY_QUALNAME[self._qualname] = self

    # -- torch registration --------------------------------------------------------------------

    def _validate_overloads(self) -> None:
        """Check what extra overloads need before anything is defined (subclass hook)."""

    def _define_overloads(self, library: torch.library.Library) -> None:
        """Define extra overloads (subclass hook)."""

    def _define(
        self,
        library: torch.library.Library,
        overload_name: str,
        schema: str,
        kernel: Callable[..., Any],
        fake: Callable[..., Any],
    ) -> torch._ops.OpOverload:
        qualified = f"{self.name}.{overload_name}" if overload_name else self.name
        define_operator(library, qualified, schema, kernel)
        torch.library.register_fake(f"{library.ns}::{qualified}", fake, lib=library)
        packet = getattr(ops_namespace(library), self.name)
        overload: torch._ops.OpOverload = getattr(packet, overload_name or "default")
        return overload

    def register_fake(self, fn: _F) -> _F:
        """Use ``fn`` instead of the native function as the op's fake (meta) kernel."""
        if not callable(fn):
            raise TypeError(f"op {self.name!r}: register_fake takes a callable, got {fn!r}")
        self._fake_fn = fn
        return fn

    def _fake_call(self, *args: Any, **kwargs: Any) -> Any:
        # An indirection so register_fake can replace the fake kernel after definition.
        return self._fake_fn(*args, **kwargs)

    @property
    def schema(self) -> str:
        return self.signature.schema

    @property
    def components(self) -> tuple[IrOp, ...]:
        """The ops a composite op is composed of, in declaration order; empty for other ops.

        A fusion pass rewrites calls of these into the composite op.
        """
        return self.composition.components if self.composition is not None else ()

    @property
    def is_composite(self) -> bool:
        return self.composition is not None

    # -- providers -----------------------------------------------------------------------------

    def register_impl(
        self,
        provider: str,
        *,
        supported: Supported = True,
        supports_args: SupportsArgs | None = None,
        inplace: bool = False,
        unsupported_reason: UnsupportedReason = None,
        functional: Callable[..., Any] | None = None,
    ) -> Callable[[Callable[..., Any]], IrOpImpl]:
        """Decorator registering the decorated function as ``provider``'s implementation.

        The function must have the native function's signature. ``supported`` (a bool, or a
        callable evaluated once) says whether the provider can run here; ``unsupported_reason``
        (a string, or a callable returning one) says why not. ``supports_args`` (same
        parameters as the native function, returning a ``bool``) says whether it takes given
        arguments. ``inplace=True`` marks an impl that
        may overwrite and return its activations; only ops made with ``allow_inplace`` take
        one. Its ``functional`` (optional, same signature) computes the same out of place, and
        the default overload calls it instead of the in-place impl on cloned activations. Any
        mismatch raises ``ValueError`` and registers nothing.
        """
        validate_name(provider, "provider")
        if provider in RESERVED_PROVIDERS:
            raise ValueError(
                f"op {self.name!r}: provider name {provider!r} is reserved "
                f"(reserved: {', '.join(RESERVED_PROVIDERS)})"
            )
        if provider in self.impls:
            _loading.provider_taken(self, provider)  # a kernel set loading: names both owners
            raise ValueError(f"op {self.name!r}: provider {provider!r} is already registered")
        if not isinstance(supported, bool) and not callable(supported):
            raise TypeError(
                f"op {self.name!r}, provider {provider!r}: supported must be a bool or a "
                f"callable returning one, got {supported!r}"
            )
        if supports_args is not None:
            self.signature.check_predicate(supports_args, provider)
        if not isinstance(inplace, bool):
            raise TypeError(f"op {self.name!r}: inplace must be a bool, got {inplace!r}")
        if inplace and not self.allow_inplace:
            raise ValueError(
                f"op {self.name!r}, provider {provider!r}: inplace=True needs an op registered "
                "with allow_inplace=True"
            )
        if unsupported_reason is not None and not (
            isinstance(unsupported_reason, str) or callable(unsupported_reason)
        ):
            raise TypeError(
                f"op {self.name!r}, provider {provider!r}: unsupported_reason must be a string "
                f"or a callable returning one, got {unsupported_reason!r}"
            )
        if functional is not None:
            if not inplace:
                raise ValueError(
                    f"op {self.name!r}, provider {provider!r}: functional= is the out-of-place "
                    "version of an in-place impl; it needs inplace=True"
                )
            self.signature.check_impl(functional, provider)

        def decorator(fn: Callable[..., Any]) -> IrOpImpl:
            self.signature.check_impl(fn, provider)
            if provider in self.impls:
                _loading.provider_taken(self, provider)
                raise ValueError(f"op {self.name!r}: provider {provider!r} is already registered")
            impl = IrOpImpl(
                self,
                provider,
                fn,
                supported=supported,
                supports_args=supports_args,
                inplace=inplace,
                unsupported_reason=unsupported_reason,
                functional=functional,
            )
            self.impls[provider] = impl
            _loading.impl_registered(self, provider)  # so a failed kernel set can take it back
            self._impls_changed(provider)
            return impl

        return decorator

    def _impls_changed(self, provider: str) -> None:
        if self._priority_is_set():
            logger.warning(
                "op %r: provider %r was registered after a priority was set; it is not used "
                "until the priority is set again",
                self.name,
                provider,
            )
        if not self._priority_from_user:
            # Defaults are recomputed on next use, so they can include the new provider.
            self._priority_impls = None

    def supported_providers(self) -> list[str]:
        """The registered providers that can run on this machine."""
        _ensure_kernels_loaded()
        return [p for p, impl in self.impls.items() if impl.supported]

    # -- priority ------------------------------------------------------------------------------

    def _filter_priority(self, priority: Sequence[str]) -> list[IrOpImpl]:
        """Turn provider names into the list dispatch walks, validating them first.

        Unsupported providers are dropped, the list stops at the first impl that takes every
        argument, and native is appended (with a warning) when no impl does.
        """
        providers = _as_provider_list(priority, self.name)
        for p in providers:
            if p not in self.impls:
                raise ValueError(self._unknown_provider_message(p))
        chosen: list[IrOpImpl] = []
        for p in providers:
            impl = self.impls[p]
            if not impl.supported:
                continue
            chosen.append(impl)
            if impl.supports_all_args:
                return chosen
        warning_once(
            self._warned,
            "no_catch_all",
            "op %r: no provider in the priority list %s takes every argument, so calls may fall "
            "back to native; add 'native' to the end of the list to silence this warning",
            self.name,
            providers,
        )
        chosen.append(self.impls[NATIVE])
        return chosen

    def _unknown_provider_message(self, provider: str) -> str:
        if provider == UNFUSED and not self.is_composite:
            return (
                f"op {self.name!r}: provider {UNFUSED!r} is only valid for composite ops "
                f"(registered with composite_of), and {self.name!r} is not one; registered "
                f"providers: {', '.join(self.impls)}"
            )
        return (
            f"op {self.name!r}: unknown provider {provider!r}; registered providers: "
            f"{', '.join(self.impls)}"
        )

    def _initialize_priority(self) -> list[IrOpImpl]:
        """Apply the defaults (``IR_OP_PRIORITY``, then the platform's) on first use."""
        from ir_op.defaults import default_priority  # late: defaults build on this module

        _ensure_kernels_loaded()
        if self._priority_impls is None:
            providers = default_priority(self, compiling=False)
            self._priority_impls = self._filter_priority(providers) if providers else []
        return self._priority_impls

    def get_priority(self, compiling: bool = False) -> list[str]:
        """The providers dispatch tries, in order.

        In this thread or task: the list of the innermost :meth:`set_priority` block, else the
        process default. With ``compiling=True``: the list a compile-time lowering uses, which is
        the one set with :meth:`set_priority` / :meth:`set_default` if any, else the compile
        defaults.
        """
        impls = self._block_priority()
        if impls is None:
            if compiling and not self._priority_from_user:
                from ir_op.defaults import default_priority

                _ensure_kernels_loaded()
                providers = default_priority(self, compiling=True)
                return [i.provider for i in self._filter_priority(providers)] if providers else []
            impls = self._priority_impls
            if impls is None:
                impls = self._initialize_priority()
        return [impl.provider for impl in impls]

    def _block_priority(self) -> list[IrOpImpl] | None:
        """The priority of this context's innermost :meth:`set_priority` block, if any."""
        overrides = current_overrides()
        return None if overrides is None else self._priority_in(overrides)

    def _priority_in(self, overrides: Overrides) -> list[IrOpImpl] | None:
        """This op's priority in ``overrides`` (a block is open in this context), or ``None``.

        While Dynamo traces, ``overrides`` is a constant of the graph, and Dynamo cannot guard
        the dict of impl lists inside it: the names come from a constant function instead and
        the impls from :attr:`impls`, as for the trace-time defaults.
        """
        if torch.compiler.is_compiling():
            names = _block_providers_while_tracing(self._qualname)
            return None if names is None else [self.impls[name] for name in names]
        return overrides.priorities.get(self._qualname)

    def _priority_is_set(self) -> bool:
        """Whether a user chose this op's priority here: a block in this context, or
        :meth:`set_default` (else the defaults apply)."""
        return self._priority_from_user or self._block_priority() is not None

    def set_default(self, priority: Sequence[str]) -> None:
        """Set this op's priority for the rest of the process.

        Every thread and task sees it, except inside its own :meth:`set_priority` blocks for
        this op (a block entered before keeps its priority until it exits).
        """
        _ensure_kernels_loaded()
        self._priority_impls = self._filter_priority(priority)
        self._priority_from_user = True

    @contextlib.contextmanager
    def set_priority(self, priority: Sequence[str]) -> Iterator[None]:
        """Set this op's priority inside a ``with`` block, for this thread or asyncio task only.

        Other threads and tasks keep theirs (see :mod:`ir_op.context`). Nestable; the previous
        priority returns on exit or error. A graph compiled inside the block keeps the
        providers chosen when it was compiled.
        """
        _ensure_kernels_loaded()
        new = self._filter_priority(priority)
        with priority_block({self._qualname: new}):
            yield

    def _priority_state(self) -> tuple[list[IrOpImpl] | None, bool]:
        """The process default: the filtered list (``None``: defaults not applied yet), and
        whether it came from :meth:`set_default`. Blocks are not part of it."""
        return self._priority_impls, self._priority_from_user

    def _restore_priority_state(self, state: tuple[list[IrOpImpl] | None, bool]) -> None:
        """Set the process default from :meth:`_priority_state`'s form."""
        self._priority_impls, self._priority_from_user = state

    # -- dispatch (the hot path) ---------------------------------------------------------------

    def dispatch(self, *args: Any, **kwargs: Any) -> IrOpImpl:
        """The implementation that runs for these arguments: the first in the priority list
        whose ``supports_args`` accepts them, or native when the priority is empty."""
        overrides = current_overrides()
        impls = self._priority_impls if overrides is None else self._priority_in(overrides)
        if impls is None:
            impls = self._priority_impls
        if impls is None:
            if torch.compiler.is_compiling():
                names = _default_providers_while_tracing(self._qualname)
                impls = [self.impls[name] for name in names]
            else:
                impls = self._initialize_priority()
        for impl in impls:
            check = impl._supports_args
            if check is None:
                return impl
            accepted = check(*args, **kwargs)
            if accepted is True:
                return impl
            if accepted is not False:
                impl.supports_args(*args, **kwargs)  # raises the descriptive TypeError
        if not impls:
            if not torch.compiler.is_compiling():
                warning_once(
                    self._warned,
                    "empty_priority",
                    "op %r: no priority is set and no default names it; using the native "
                    "implementation (set one with op.set_default([...]) or IR_OP_PRIORITY)",
                    self.name,
                )
            return self.impls[NATIVE]
        raise RuntimeError(
            f"op {self.name!r}: no provider in the priority {self.get_priority()} takes these "
            "arguments; the list should end with a provider that takes every argument"
        )

    def _call_default(self, *args: Any, **kwargs: Any) -> Any:
        """The default overload: functional, so in-place impls get cloned activations."""
        return self.dispatch(*args, **kwargs).functional_fn(*args, **kwargs)

    def _needs_grad(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether a tensor argument requires grad (the caller checked grad mode)."""
        for i, name in self._tensor_positions:
            value = args[i] if i < len(args) else kwargs.get(name)
            if isinstance(value, torch.Tensor) and value.requires_grad:
                return True
        return False

    def _call_for_grad(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The gradient rule: with grad mode on and an input that requires grad, the native
        implementation runs (differentiable, as autograd records its torch ops); an op declared
        ``differentiable=False`` refuses instead of returning outputs without gradients."""
        if not self.differentiable:
            raise ValueError(
                f"op {self.name!r} is not differentiable (its outputs carry no gradient), but "
                "grad mode is on and an argument requires grad; call it under torch.no_grad() "
                "or torch.inference_mode(), or pass detached tensors" + self._differentiable_hint()
            )
        if not torch.compiler.is_compiling() and "grad" not in self._warned:
            try:
                chosen = self.dispatch(*args, **kwargs).provider
            except RuntimeError:  # no provider takes them: native runs all the same
                chosen = NATIVE
            if chosen != NATIVE:
                warning_once(
                    self._warned,
                    "grad",
                    "op %r: an argument requires grad, so the native implementation runs "
                    "instead of provider %r (kernels do not compute gradients); call it under "
                    "torch.no_grad() or torch.inference_mode() to use the kernel",
                    self.name,
                    chosen,
                )
        return self.native_fn(*args, **kwargs)

    def _differentiable_hint(self) -> str:
        differentiable = [c.name for c in self.components if c.differentiable]
        if not differentiable:
            return ""
        return (
            f"; for gradients of its differentiable parts call {', '.join(differentiable)} "
            "separately"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        validate = self.validate
        if validate is not None:
            validate(*args, **kwargs)
        if _is_grad_enabled() and self._needs_grad(args, kwargs):
            return self._call_for_grad(args, kwargs)
        # Outside every block (the common case) the context costs one ContextVar.get().
        overrides = current_overrides()
        if overrides is None:
            if TORCH_WRAP.enabled:
                return self.torch_op(*args, **kwargs)
            impls = self._priority_impls
        else:
            wrap = overrides.torch_wrap
            if wrap or (wrap is None and TORCH_WRAP.enabled):
                return self.torch_op(*args, **kwargs)
            impls = self._priority_in(overrides)
            if impls is None:
                impls = self._priority_impls
        # dispatch() inlined for the common case (the eager hot path: one frame less); anything
        # else (defaults not applied yet, a predicate that does not answer True or False, no
        # provider taking the arguments) goes through dispatch() itself.
        if impls is not None:
            for impl in impls:
                check = impl._supports_args
                if check is None:
                    return impl.functional_fn(*args, **kwargs)
                accepted = check(*args, **kwargs)
                if accepted is True:
                    return impl.functional_fn(*args, **kwargs)
                if accepted is not False:
                    break
        return self.dispatch(*args, **kwargs).functional_fn(*args, **kwargs)

    def bind_arguments(self, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """All arguments by position, defaults filled in (slow; for tools, not for dispatch)."""
        bound = self.signature.python.bind(*args, **kwargs)
        bound.apply_defaults()
        return tuple(bound.arguments[name] for name in self.signature.parameter_names)

    # -- testing support -----------------------------------------------------------------------

    def register_input_generator(self, fn: InputGenerator) -> InputGenerator:
        """Register ``fn(num_tokens, hidden_size, dtype, ..., device=None) -> args``."""
        if not callable(fn):
            raise TypeError(f"op {self.name!r}: an input generator must be callable, got {fn!r}")
        self._input_generator = fn
        return fn

    @property
    def has_input_generator(self) -> bool:
        return self._input_generator is not None

    def generate_inputs(self, **kwargs: Any) -> tuple[Any, ...]:
        """Arguments for one call of the op, from its registered input generator."""
        if self._input_generator is None:
            raise RuntimeError(
                f"op {self.name!r} has no input generator; register one with "
                f"@{self.name}.register_input_generator"
            )
        return tuple(self._input_generator(**kwargs))

    def override_tolerance(self, dtype: torch.dtype, *, atol: float, rtol: float) -> None:
        """Set the tolerance used when comparing providers with native for ``dtype``."""
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"op {self.name!r}: expected a torch.dtype, got {dtype!r}")
        for label, value in (("atol", atol), ("rtol", rtol)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"op {self.name!r}: {label} must be a number >= 0, got {value!r}")
        self._tolerance_overrides[dtype] = {"atol": float(atol), "rtol": float(rtol)}

    def get_tolerance(self, dtype: torch.dtype) -> Tolerance:
        """``{"atol": ..., "rtol": ...}`` for comparing outputs of ``dtype`` with native."""
        found = self._tolerance_overrides.get(dtype) or DEFAULT_TOLERANCES.get(dtype)
        if found is None:
            known = sorted({str(d) for d in (*DEFAULT_TOLERANCES, *self._tolerance_overrides)})
            raise ValueError(
                f"op {self.name!r}: no tolerance for dtype {dtype}; known dtypes: "
                f"{', '.join(known)} (add one with op.override_tolerance)"
            )
        return {"atol": found["atol"], "rtol": found["rtol"]}

    # -- display -------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"IrOp({self.name!r})"

    def __str__(self) -> str:
        first = self._docstring.split("\n", 1)[0].strip()
        return f"IrOp({self.name!r}) - {first}" if first else repr(self)


class IrOpInplaceOverload:
    """``op.maybe_inplace``: the overload whose implementations may reuse activation memory.

    Its schema marks the activations as written. Contract: after calling it, the caller must not
    read the activation inputs again, since an in-place provider may have overwritten them (and
    a non-in-place one did not).

    An eager call runs the chosen implementation directly, with the torch wrap flag on or off,
    so an in-place provider returns the caller's tensors. The torch operator is for traced
    calls (:func:`~ir_op.wrap.is_traced_call`): PyTorch requires a custom operator's outputs to
    be new tensors, never its inputs (checked when a compiled graph first runs; deprecated, an
    error when ``CI`` is set), so its kernel computes out of place, as the default overload
    does. Under ``torch.compile``, ir-compile's lowering brings the in-place kernel back where
    the caller donated the activations.

    Its torch operator returns plain Tensors: torch functionalizes a mutating custom op (for
    AOTAutograd and Inductor) only when every output is a ``Tensor``, so where the op returns
    ``None`` for an absent optional activation (a rotary embedding without a key) the operator
    returns an empty tensor instead. Calling the overload turns that back into ``None``.
    """

    def __init__(self, op: IrOpInplace, torch_op: torch._ops.OpOverload) -> None:
        self.op = op
        self.name = f"{op.name}.maybe_inplace"
        self.torch_op = torch_op

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        op = self.op
        if op.validate is not None:
            op.validate(*args, **kwargs)
        if _is_grad_enabled() and op._needs_grad(args, kwargs):
            return op._call_for_grad(args, kwargs)  # out of place, as the contract allows
        overrides = current_overrides()
        if overrides is None:
            wrap = TORCH_WRAP.enabled
            impls = op._priority_impls
        else:
            block_wrap = overrides.torch_wrap
            wrap = TORCH_WRAP.enabled if block_wrap is None else block_wrap
            impls = op._priority_in(overrides)
            if impls is None:
                impls = op._priority_impls
        if wrap and (is_traced_call(args) or (kwargs and is_traced_call(kwargs.values()))):
            out = self.torch_op(*args, **kwargs)
            if op._optional_outputs:
                out = op._restore_absent_outputs(out, args, kwargs)
            return out
        # As IrOp.__call__: dispatch() inlined for the common case.
        if impls is not None:
            for impl in impls:
                check = impl._supports_args
                if check is None:
                    return impl.impl_fn(*args, **kwargs)
                accepted = check(*args, **kwargs)
                if accepted is True:
                    return impl.impl_fn(*args, **kwargs)
                if accepted is not False:
                    break
        return op.dispatch(*args, **kwargs).impl_fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"IrOpInplaceOverload({self.op.name!r})"


class IrOpInplace(IrOp):
    """An op with a ``maybe_inplace`` overload, for providers that write results in place.

    Each output must be a tensor (``Tensor``, or ``Tensor?`` for an optional activation, which
    is ``None`` exactly when that activation is) and correspond, in order, to one activation.
    """

    allow_inplace: ClassVar[bool] = True
    maybe_inplace: IrOpInplaceOverload

    def _validate_overloads(self) -> None:
        returns = self.signature.return_entries
        if len(returns) != len(self.activations) or any(
            r not in ("Tensor", "Tensor?") for r in returns
        ):
            raise ValueError(
                f"op {self.name!r}: allow_inplace needs one Tensor output per activation; "
                f"activations {self.activations}, outputs {returns}"
            )
        self._mutable_schema = self.signature.mutable_schema(self.activations)
        # (output index, activation position, activation name, its default) per Tensor? output
        params = list(self.signature.python.parameters.values())
        self._optional_outputs: list[tuple[int, int, str, Any]] = []
        for i, (ret, name) in enumerate(zip(returns, self.activations, strict=True)):
            if ret == "Tensor?":
                position = self.signature.parameter_names.index(name)
                self._optional_outputs.append((i, position, name, params[position].default))

    def _define_overloads(self, library: torch.library.Library) -> None:
        torch_op = self._define(
            library,
            "maybe_inplace",
            self._mutable_schema,
            self._maybe_inplace_kernel,
            self._maybe_inplace_fake,
        )
        self.maybe_inplace = IrOpInplaceOverload(self, torch_op)

    def _maybe_inplace_kernel(self, *args: Any, **kwargs: Any) -> Any:
        """The torch operator's kernel: out of place, so no output aliases an input (see
        :class:`IrOpInplaceOverload`)."""
        return self._fill_absent_outputs(self._call_default(*args, **kwargs))

    def _maybe_inplace_fake(self, *args: Any, **kwargs: Any) -> Any:
        return self._fill_absent_outputs(self._fake_call(*args, **kwargs))

    def _fill_absent_outputs(self, out: Any) -> Any:
        """``None`` outputs become empty tensors, as the torch operator's schema requires."""
        if not self._optional_outputs or not isinstance(out, tuple) or None not in out:
            return out
        like = next((o for o in out if isinstance(o, torch.Tensor)), None)
        empty = like.new_empty(0) if like is not None else torch.empty(0)
        return tuple(empty if o is None else o for o in out)

    def _restore_absent_outputs(
        self, out: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, ...]:
        """The outputs of absent optional activations back to ``None``."""
        restored = list(out)
        for index, position, name, default in self._optional_outputs:
            value = args[position] if position < len(args) else kwargs.get(name, default)
            if value is None:
                restored[index] = None
        return tuple(restored)


@overload
def register_op(f: Callable[..., Any], /) -> IrOp: ...


@overload
def register_op(
    name: str | None = None,
    *,
    activations: Sequence[str] | None = None,
    allow_inplace: Literal[False] = False,
    schema: str | None = None,
    composite_of: Sequence[IrOp] | None = None,
    validate: Callable[..., None] | None = None,
    differentiable: bool = True,
) -> Callable[[Callable[..., Any]], IrOp]: ...


@overload
def register_op(
    name: str | None = None,
    *,
    activations: Sequence[str] | None = None,
    allow_inplace: Literal[True],
    schema: str | None = None,
    composite_of: Sequence[IrOp] | None = None,
    validate: Callable[..., None] | None = None,
    differentiable: bool = True,
) -> Callable[[Callable[..., Any]], IrOpInplace]: ...


def register_op(
    f: Callable[..., Any] | str | None = None,
    /,
    *,
    name: str | None = None,
    activations: Sequence[str] | None = None,
    allow_inplace: bool = False,
    schema: str | None = None,
    composite_of: Sequence[IrOp] | None = None,
    validate: Callable[..., None] | None = None,
    differentiable: bool = True,
) -> IrOp | Callable[[Callable[..., Any]], IrOp]:
    """Define an IR op from its native implementation and add it to :attr:`IrOp.registry`.

    Use bare (``@register_op``) or with options (``@register_op(name=..., allow_inplace=True)``).
    The name defaults to the function's name. ``activations`` lists the parameters that carry
    activations (default: those whose names start with ``x``); with ``allow_inplace=True`` the
    op gets a ``maybe_inplace`` overload and returns an :class:`IrOpInplace`. ``schema`` gives
    the torch schema where ``torch.library.infer_schema`` cannot express the signature.

    ``composite_of=[op, ...]`` makes a composite op: the decorated function is then its
    composition, whose first parameter (``components: Components``) reaches the component ops
    by name; the op has the remaining parameters, a native implementation that composes the
    components' native ones and the provider ``unfused`` that runs each component through its
    own dispatch (see :mod:`ir_op.composite`).

    ``validate`` (the native function's parameters, returning ``None``) raises ``TypeError`` or
    ``ValueError`` for bad arguments; every call of the op runs it once, before dispatch, so
    every provider gets the same checks. ``differentiable=False`` declares an op whose outputs
    carry no gradient (quantization): called in grad mode with an argument that requires grad
    it raises ``ValueError``; differentiable ops run their native implementation then.
    """
    if isinstance(f, str):
        if name is not None:
            raise TypeError("register_op: the name was given twice")
        name, f = f, None
    if not isinstance(allow_inplace, bool):
        raise TypeError(f"register_op: allow_inplace must be a bool, got {allow_inplace!r}")

    def decorator(fn: Callable[..., Any]) -> IrOp:
        op_name = validate_name(name if name is not None else getattr(fn, "__name__", None), "op")
        if op_name in IrOp.registry:
            raise ValueError(f"op {op_name!r} is already registered")
        cls = IrOpInplace if allow_inplace else IrOp
        op = cls(
            op_name,
            fn,
            activations,
            schema=schema,
            composite_of=composite_of,
            validate=validate,
            differentiable=differentiable,
        )
        IrOp.registry[op_name] = op
        _loading.op_registered(op)
        return op

    if f is not None:
        return decorator(f)
    return decorator
