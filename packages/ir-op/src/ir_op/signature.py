"""An op's signature: its torch schema, and the checks that hold implementations to it.

The native function is the single source of truth. Its schema comes from
``torch.library.infer_schema``; where inference cannot express the types (a
``tuple[Tensor, Tensor | None]`` return, say), the op passes an explicit schema and
implementations are held to the native function's Python signature instead.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.library import infer_schema

_EMPTY = inspect.Parameter.empty


def _describe(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if module else name


def _signature_of(fn: Callable[..., Any], what: str) -> inspect.Signature:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: cannot read the signature of {_describe(fn)}: {e}") from None


def _evaluated_signature(fn: Callable[..., Any], what: str) -> inspect.Signature:
    """The signature with string annotations evaluated, so ``"Tensor"`` written under
    ``from __future__ import annotations`` equals ``Tensor`` written without it.

    Annotations that do not resolve at run time (names imported only for type checkers) are
    kept as written.
    """
    try:
        return inspect.signature(fn, eval_str=True)
    except (NameError, SyntaxError, TypeError, AttributeError):
        return _signature_of(fn, what)
    except ValueError as e:
        raise ValueError(f"{what}: cannot read the signature of {_describe(fn)}: {e}") from None


def _reject_unsupported_parameters(sig: inspect.Signature, what: str) -> None:
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            raise ValueError(
                f"{what}: parameter {p.name!r} is keyword-only; IR ops take positional-or-keyword "
                "parameters only, because compiled graphs pass every argument by position"
            )
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ValueError(f"{what}: parameter {p.name!r} is variadic; list each parameter")


def _check_annotations(sig: inspect.Signature, what: str) -> None:
    for p in sig.parameters.values():
        if p.annotation is _EMPTY:
            raise ValueError(f"{what}: parameter {p.name!r} has no type annotation")
    if sig.return_annotation is _EMPTY:
        raise ValueError(f"{what}: the return type is not annotated")


def _schema_source(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The function whose annotations ``infer_schema`` should read: for a ``functools.wraps``
    wrapper, the wrapped function. ``inspect.signature`` follows ``__wrapped__`` but
    ``infer_schema`` evaluates string annotations in ``fn.__globals__``: a wrapper defined in a
    module without ``Tensor`` in scope would fail with "name 'Tensor' is not defined"."""
    source: Callable[..., Any] = inspect.unwrap(fn, stop=lambda f: hasattr(f, "__signature__"))
    return source


def _infer(fn: Callable[..., Any], what: str) -> str:
    try:
        return str(infer_schema(_schema_source(fn), mutates_args=()))
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{what}: torch.library.infer_schema cannot express this signature ({e}); "
            "pass schema='(...) -> ...' to register_op to give it explicitly"
        ) from None


def _parse_schema_arguments(schema: str) -> list[str]:
    """Return the argument names of a schema string such as ``(Tensor x, int n) -> Tensor``."""
    parsed = torch._C.parse_schema(f"ir_schema_check::op{schema}")
    return [a.name for a in parsed.arguments]


_RETURNS = re.compile(r"\)\s*->\s*(.*)$")


def _return_entries(schema: str) -> list[str]:
    match = _RETURNS.search(schema)
    if match is None:
        return []
    returns = match.group(1).strip()
    if returns.startswith("(") and returns.endswith(")"):
        returns = returns[1:-1]
    return [r.strip() for r in returns.split(",") if r.strip()]


@dataclass(frozen=True)
class OpSignature:
    """The Python signature and torch schema of an op's native function."""

    op_name: str
    python: inspect.Signature
    schema: str
    explicit_schema: bool

    @classmethod
    def of_native(
        cls, op_name: str, fn: Callable[..., Any], schema: str | None = None
    ) -> OpSignature:
        what = f"op {op_name!r}"
        if not callable(fn):
            raise TypeError(f"{what}: the native implementation must be callable, got {fn!r}")
        sig = _signature_of(fn, what)
        _reject_unsupported_parameters(sig, what)
        _check_annotations(sig, what)
        if schema is None:
            return cls(op_name, sig, _infer(fn, what), explicit_schema=False)
        if not isinstance(schema, str):
            raise TypeError(f"{what}: schema must be a string like '(Tensor x) -> Tensor'")
        try:
            names = _parse_schema_arguments(schema)
        except RuntimeError as e:
            raise ValueError(f"{what}: schema {schema!r} does not parse: {e}") from None
        params = list(sig.parameters)
        if names != params:
            raise ValueError(
                f"{what}: schema {schema!r} names the arguments {names}, but the native "
                f"function's parameters are {params}"
            )
        # Implementations are held to these annotations (see check_impl).
        return cls(op_name, _evaluated_signature(fn, what), schema.strip(), explicit_schema=True)

    @property
    def parameter_names(self) -> list[str]:
        return list(self.python.parameters)

    @property
    def return_entries(self) -> list[str]:
        """The schema's return types, e.g. ``["Tensor", "Tensor?"]``."""
        return _return_entries(self.schema)

    def check_impl(self, fn: Callable[..., Any], provider: str) -> None:
        """Raise ``ValueError`` unless ``fn`` has the native function's signature."""
        what = f"op {self.op_name!r}, provider {provider!r}"
        if not callable(fn):
            raise TypeError(f"{what}: the implementation must be callable, got {fn!r}")
        sig = _signature_of(fn, what)
        _reject_unsupported_parameters(sig, what)
        _check_annotations(sig, what)
        if not self.explicit_schema:
            try:
                schema = str(infer_schema(_schema_source(fn), mutates_args=()))
            except (ValueError, TypeError) as e:
                raise ValueError(
                    f"{what}: the implementation's signature {sig} does not match the native "
                    f"schema {self.schema!r} (torch cannot express it: {e})"
                ) from None
            if schema != self.schema:
                raise ValueError(
                    f"{what}: the implementation's schema {schema!r} does not match the native "
                    f"schema {self.schema!r}"
                )
            return
        # No inferred schema to compare: compare the evaluated Python signatures instead.
        sig = _evaluated_signature(fn, what)
        mine = [(p.name, p.default, p.annotation) for p in sig.parameters.values()]
        native = [(p.name, p.default, p.annotation) for p in self.python.parameters.values()]
        if mine != native or sig.return_annotation != self.python.return_annotation:
            raise ValueError(
                f"{what}: the implementation's signature {sig} does not match the native "
                f"signature {self.python}"
            )

    def check_predicate(self, fn: object, provider: str, what: str | None = None) -> None:
        """Raise ``ValueError`` unless ``fn`` can be called exactly like the native function.

        Matching names, count and defaults let dispatch pass the caller's arguments straight
        through, without binding them to a signature on every call. Checks ``supports_args``
        predicates and op validators (``what`` names the latter in messages).
        """
        if what is None:
            what = f"op {self.op_name!r}, provider {provider!r}: supports_args"
        if not callable(fn):
            raise ValueError(f"{what} must be callable, got {fn!r}")
        sig = _signature_of(fn, what)
        for p in sig.parameters.values():
            if p.kind is inspect.Parameter.KEYWORD_ONLY:
                raise ValueError(f"{what} has keyword-only parameter {p.name!r}")
        mine = list(sig.parameters.values())
        native = list(self.python.parameters.values())
        if len(mine) != len(native):
            raise ValueError(
                f"{what} takes {len(mine)} parameters ({[p.name for p in mine]}), "
                f"the native function {len(native)} ({[p.name for p in native]})"
            )
        for p, q in zip(mine, native, strict=False):
            if p.name != q.name:
                raise ValueError(
                    f"{what} names parameter {p.name!r} where the native function has {q.name!r}"
                )
            if p.default != q.default:
                shown = "no default" if p.default is _EMPTY else f"default {p.default!r}"
                wanted = "no default" if q.default is _EMPTY else f"default {q.default!r}"
                raise ValueError(
                    f"{what} gives parameter {p.name!r} {shown}; the native function has {wanted}"
                )

    def tensor_positions(self) -> tuple[tuple[int, str], ...]:
        """``(position, name)`` of each ``Tensor`` or ``Tensor?`` parameter, from the schema."""
        parsed = torch._C.parse_schema(f"ir_schema_check::op{self.schema}")
        return tuple(
            (i, a.name)
            for i, a in enumerate(parsed.arguments)
            if str(a.type) in ("Tensor", "Optional[Tensor]", "Tensor?")
        )

    def activation_indices(self, activations: Sequence[str]) -> list[int]:
        return [i for i, name in enumerate(self.python.parameters) if name in activations]

    def mutable_schema(self, activations: Sequence[str]) -> str:
        """The schema with each activation marked as written (``Tensor(a0!) x``).

        Its outputs are plain ``Tensor`` (``Tensor?`` becomes ``Tensor``): torch functionalizes
        a mutating custom op only when every output is a ``Tensor``.
        """
        arguments, arrow, returns = self.schema.rpartition("->")
        schema = arguments + arrow + returns.replace("Tensor?", "Tensor")
        for i, name in enumerate(activations):
            pattern = re.compile(rf"\bTensor(\??) {re.escape(name)}\b")
            schema, count = pattern.subn(rf"Tensor(a{i}!)\1 {name}", schema, count=1)
            if count != 1:
                raise ValueError(
                    f"op {self.op_name!r}: activation {name!r} is not a Tensor parameter of "
                    f"the schema {self.schema!r}"
                )
        return schema
