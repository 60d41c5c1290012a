"""``IrOpImpl``: one provider's implementation of an op."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ir_op.hashing import hash_files, source_file
from ir_op.naming import NATIVE

if TYPE_CHECKING:
    from ir_op.op import IrOp

SupportsArgs = Callable[..., bool]
Supported = bool | Callable[[], bool]
UnsupportedReason = str | Callable[[], str | None] | None


class IrOpImpl:
    """An implementation of ``op`` by ``provider``.

    Built by :meth:`IrOp.register_impl`, which checks the signature first; not meant to be
    constructed directly.

    - ``supported`` says whether the provider can run here at all (its library or hardware is
      present). A callable is evaluated once, on first use; if it raises, the impl is unsupported
      and the exception becomes :attr:`unsupported_reason`. ``unsupported_reason`` says why
      when it cannot: a string, or a callable returning one (evaluated once, when needed), for
      a reason that depends on the machine.
    - ``supports_args`` says whether it can take particular arguments (dtypes, strides). It has
      the native function's parameters and must return a Python ``bool`` for real tensors,
      FakeTensors and SymInts alike, without depending on the batch size.
    - An ``inplace`` impl may overwrite its activation inputs and return them. The op's default
      overload hands it clones (see :attr:`functional_fn`), or calls ``functional`` instead when
      the provider has an out-of-place version of the same computation (which spares the
      copies); ``maybe_inplace`` hands the in-place impl the caller's tensors.
    """

    def __init__(
        self,
        op: IrOp,
        provider: str,
        impl_fn: Callable[..., Any],
        *,
        supported: Supported = True,
        supports_args: SupportsArgs | None = None,
        inplace: bool = False,
        unsupported_reason: UnsupportedReason = None,
        functional: Callable[..., Any] | None = None,
    ) -> None:
        self.op = op
        self.provider = provider
        self.impl_fn = impl_fn
        self.inplace = inplace
        self._supported = supported
        self._support: tuple[bool, str | None] | None = None
        self._declared_reason = unsupported_reason
        # Read directly by IrOp.dispatch: None means "takes every argument".
        self._supports_args = supports_args
        self.functional_fn: Callable[..., Any]
        """What the op's default (functional) overload calls: never mutates the caller's tensors."""
        if functional is not None:
            self.functional_fn = functional
        else:
            self.functional_fn = self._call_on_cloned_activations if inplace else impl_fn

    # -- support -------------------------------------------------------------------------------

    def _evaluate_support(self) -> tuple[bool, str | None]:
        check = self._supported
        if isinstance(check, bool):
            ok, reason = check, None
        else:
            try:
                result = check()
            except Exception as e:  # a failing probe means "not here", with the reason kept
                return False, f"support check raised {type(e).__name__}: {e}"
            if not isinstance(result, bool):
                return False, f"support check returned {result!r}, not a bool"
            ok, reason = result, None
        if ok:
            return True, None
        declared = self._declared_reason
        if callable(declared):
            try:
                declared = declared()
            except Exception as e:
                declared = f"the unsupported_reason callable raised {type(e).__name__}: {e}"
        return False, declared or reason or "registered with supported=False"

    @property
    def supported(self) -> bool:
        """Whether this provider can run on this machine (evaluated once)."""
        if self._support is None:
            self._support = self._evaluate_support()
        return self._support[0]

    @property
    def unsupported_reason(self) -> str | None:
        """Why the provider cannot run here, or ``None`` when it can."""
        if self._support is None:
            self._support = self._evaluate_support()
        return self._support[1]

    @property
    def supports_all_args(self) -> bool:
        """True when the impl has no ``supports_args`` predicate."""
        return self._supports_args is None

    def supports_args(self, *args: Any, **kwargs: Any) -> bool:
        """Whether this impl takes these arguments (given as they would be to the op)."""
        check = self._supports_args
        if check is None:
            return True
        result = check(*args, **kwargs)
        if not isinstance(result, bool):
            raise TypeError(
                f"supports_args of {self!r} returned {result!r} ({type(result).__name__}); "
                "it must return a Python bool (call bool() on tensor or SymInt comparisons)"
            )
        return result

    # -- calling -------------------------------------------------------------------------------

    def _call_on_cloned_activations(self, *args: Any, **kwargs: Any) -> Any:
        """Call an in-place impl so that the caller's tensors stay untouched."""
        op = self.op
        new_args = list(args)
        for i in op.activation_indices:
            if i < len(new_args):
                new_args[i] = _clone(new_args[i])
        for name in op.activations:
            if name in kwargs:
                kwargs[name] = _clone(kwargs[name])
        return self.impl_fn(*new_args, **kwargs)

    # -- identity ------------------------------------------------------------------------------

    def uuid(self) -> str:
        """sha256 of the source file that defines this impl; changes when that file changes."""
        return hash_files(source_file(self.impl_fn))

    @property
    def is_native(self) -> bool:
        return self.provider == NATIVE

    def __repr__(self) -> str:
        return f"IrOpImpl({self.op.name!r}, {self.provider!r})"


def _clone(value: Any) -> Any:
    # Optional activations (a rotary embedding without a key) arrive as None.
    return value.clone() if value is not None else None
