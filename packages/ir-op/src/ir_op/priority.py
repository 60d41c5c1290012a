"""``IrOpPriorityConfig``: provider priorities for many ops at once.

A read-only mapping from op name to a tuple of provider names. Op names are checked against the
registry when a config is built, and a name the registry lacks is looked up again after the
kernel sets load (they may define ops), so a config is accepted or refused the same before and
after loading. Provider names are checked when it is applied, because kernel sets load lazily
and may not have registered their providers yet.

Entries that :meth:`IrOpPriorityConfig.with_default` fills in from its shared default work as a
platform's defaults do: when applied, an op skips the providers it does not have (an op left
with none is left as it is). Entries given by name must name providers the op has.

Text form (``IR_OP_PRIORITY``, :meth:`IrOpPriorityConfig.parse`, ``str(config)``)::

    rms_norm=cuda,native;fused_add_rms_norm=native

or a JSON object ``{"rms_norm": ["cuda", "native"]}``. Spaces are ignored.

``unfused`` is a valid entry for composite ops only;
:meth:`IrOpPriorityConfig.with_default` gives composite ops ``unfused`` right before ``native``
(see :func:`ir_op.composite.shared_default`).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ir_op.composite import shared_default
from ir_op.context import priority_block
from ir_op.naming import UNFUSED, validate_name
from ir_op.op import IrOp

ENV_VAR = "IR_OP_PRIORITY"

ProviderList = Sequence[str] | str


def _providers(op_name: str, value: object) -> tuple[str, ...]:
    """Normalize one entry's value (a list, or a comma-separated string) and check it."""
    if isinstance(value, str):
        items: list[object] = [p.strip() for p in value.split(",")]
    elif isinstance(value, Sequence):
        items = list(value)
    else:
        raise TypeError(
            f"priority for op {op_name!r} must be a list of provider names or a comma-separated "
            f"string, got {value!r}"
        )
    if not items or items == [""]:
        raise ValueError(f"priority for op {op_name!r} is empty; list at least one provider")
    providers: list[str] = []
    for item in items:
        p = validate_name(item, f"provider (in the priority for op {op_name!r})")
        if p in providers:
            raise ValueError(f"priority for op {op_name!r} lists provider {p!r} twice")
        providers.append(p)
    return tuple(providers)


def parse_priority_text(text: str, *, source: str = "priority text") -> dict[str, tuple[str, ...]]:
    """Parse the text form into ``{op: providers}`` without checking op names.

    ``ValueError`` names ``source`` (for example ``IR_OP_PRIORITY``) and the bad part.
    """
    if not isinstance(text, str):
        raise TypeError(f"{source} must be a string, got {text!r}")
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source} is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{source} must be a JSON object of op name -> provider list")
        return {str(op): _providers(str(op), value) for op, value in data.items()}
    entries: dict[str, tuple[str, ...]] = {}
    for part in "".join(stripped.split()).split(";"):
        if not part:
            continue
        op, sep, value = part.partition("=")
        if not sep or not op:
            raise ValueError(
                f"{source}: entry {part!r} is not of the form op=provider,provider "
                "(entries are separated by ';')"
            )
        validate_name(op, f"op (in {source})")
        if op in entries:
            raise ValueError(f"{source} names op {op!r} twice")
        entries[op] = _providers(op, value)
    return entries


def _check_ops(names: Sequence[str]) -> None:
    missing = [name for name in names if name not in IrOp.registry]
    if not missing:
        return
    from ir_op.platforms import ensure_kernels_loaded  # late: platforms build on this module

    ensure_kernels_loaded()  # a kernel set may define the op; checked the same before and after
    for name in missing:
        if name not in IrOp.registry:
            close = difflib.get_close_matches(name, list(IrOp.registry), n=3)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            raise ValueError(
                f"unknown op {name!r} in priority config; {hint}registered ops: "
                f"{', '.join(sorted(IrOp.registry)) or '(none)'}"
            )


def _check_unfused(entries: Mapping[str, tuple[str, ...]]) -> None:
    """``unfused`` only for composite ops: known when the config is built, unlike providers."""
    for name, providers in entries.items():
        op = IrOp.registry[name]
        if UNFUSED in providers and not op.is_composite:
            raise ValueError(op._unknown_provider_message(UNFUSED))


class IrOpPriorityConfig(Mapping[str, tuple[str, ...]]):
    """Op name -> provider priority, for configuring many ops at once.

    ``IrOpPriorityConfig(rms_norm=["cuda", "native"], fused_add_rms_norm="native")``
    """

    __slots__ = ("_entries", "_shared")

    def __init__(self, **priorities: ProviderList) -> None:
        entries = {op: _providers(op, value) for op, value in priorities.items()}
        _check_ops(list(entries))
        _check_unfused(entries)
        self._entries: dict[str, tuple[str, ...]] = entries
        self._shared: frozenset[str] = frozenset()
        """Ops whose entry came from ``with_default``'s shared default: missing providers skip."""

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, priorities: Mapping[str, ProviderList]) -> IrOpPriorityConfig:
        if not isinstance(priorities, Mapping):
            raise TypeError(
                f"from_dict takes a mapping of op name -> providers, got {priorities!r}"
            )
        bad = [k for k in priorities if not isinstance(k, str)]
        if bad:
            raise TypeError(f"op names must be strings, got {bad[0]!r}")
        return cls(**priorities)

    @classmethod
    def parse(cls, text: str) -> IrOpPriorityConfig:
        """Build a config from its text form (see the module docstring)."""
        return cls(**parse_priority_text(text))

    @classmethod
    def from_env(cls) -> IrOpPriorityConfig:
        """Build a config from ``IR_OP_PRIORITY`` (empty when unset)."""
        return cls(**parse_priority_text(os.environ.get(ENV_VAR, ""), source=ENV_VAR))

    @classmethod
    def with_default(cls, default: ProviderList, **priorities: ProviderList) -> IrOpPriorityConfig:
        """``default`` for every registered op, except those given as keywords.

        ``unfused`` in a shared default is for composite ops: each composite op gets it right
        before ``native`` (or last) unless ``default`` places it, and other ops skip it (an op left
        with nothing gets no entry). So
        ``with_default(["cuda", "native"])`` runs a composite op's fused cuda kernel where there
        is one, else its components' kernels. Keyword entries are taken as given.

        The kernel sets are loaded first, so "every registered op" includes the ops they
        define. Like a platform default, the shared default is applied to each op without the
        providers the op lacks: ``with_default(["cuda", "native"]).set_default()`` gives an op
        with no ``cuda`` provider ``["native"]``, and skips an op left with nothing.
        """
        from ir_op.platforms import ensure_kernels_loaded

        shared = _providers("(default)", default)
        ensure_kernels_loaded()
        merged: dict[str, ProviderList] = {}
        for name, op in IrOp.registry.items():
            share = shared_default(op, shared)
            if share:  # empty for an op that is not composite when default is ["unfused"]
                merged[name] = share
        from_default = frozenset(merged) - frozenset(priorities)
        merged.update(priorities)
        config = cls(**merged)
        config._shared = from_default
        return config

    # -- mapping -------------------------------------------------------------------------------

    def __getitem__(self, op_name: str) -> tuple[str, ...]:
        return self._entries[op_name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        inner = ", ".join(f"{op}={list(p)!r}" for op, p in self._entries.items())
        return f"IrOpPriorityConfig({inner})"

    def __str__(self) -> str:
        """The text form, which :meth:`parse` reads back."""
        return ";".join(f"{op}={','.join(p)}" for op, p in self._entries.items())

    # -- applying ------------------------------------------------------------------------------

    def _ops(self) -> list[IrOp]:
        _check_ops(list(self._entries))  # an op may have left the registry since (tests)
        return [IrOp.registry[name] for name in self._entries]

    def _applied(self) -> list[tuple[IrOp, tuple[str, ...]]]:
        """Each op with the providers it is given: a shared-default entry without the providers
        its op lacks (left out when none remain), any other entry as it is."""
        applied: list[tuple[IrOp, tuple[str, ...]]] = []
        for op in self._ops():
            providers = self._entries[op.name]
            if op.name in self._shared:
                providers = tuple(p for p in providers if p in op.impls)
                if not providers:
                    continue
            applied.append((op, providers))
        return applied

    def set_default(self) -> None:
        """Set every listed op's priority for the rest of the process.

        All entries are validated before any op changes, so a bad provider changes nothing.
        """
        from ir_op.platforms import ensure_kernels_loaded

        ensure_kernels_loaded()
        applied = self._applied()
        filtered = [op._filter_priority(providers) for op, providers in applied]
        for (op, _), impls in zip(applied, filtered, strict=True):
            op._restore_priority_state((impls, True))

    @contextlib.contextmanager
    def set_priority(self) -> Iterator[None]:
        """Set every listed op's priority inside a ``with`` block, for this thread or asyncio
        task only (as :meth:`IrOp.set_priority` does); restored on exit or error.

        All entries are validated before the block starts, so a bad provider changes nothing.
        """
        from ir_op.platforms import ensure_kernels_loaded

        ensure_kernels_loaded()
        filtered = {
            op._qualname: op._filter_priority(providers) for op, providers in self._applied()
        }
        with priority_block(filtered):
            yield

    def compute_hash(self) -> str:
        """A sha256 hex digest of the listed priorities and the source of every listed impl.

        Stable across processes; changes when an entry or any listed impl's source changes.
        """
        from ir_op.platforms import ensure_kernels_loaded

        ensure_kernels_loaded()
        payload: list[Any] = []
        for op, providers in sorted(self._applied(), key=lambda entry: entry[0].name):
            uuids = []
            for p in providers:
                impl = op.impls.get(p)
                if impl is None:
                    raise ValueError(op._unknown_provider_message(p))
                uuids.append(impl.uuid())
            payload.append([op.name, list(providers), uuids])
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()
