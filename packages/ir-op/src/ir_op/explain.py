"""Why dispatch picks the provider it picks: one decision per provider in the priority list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ir_op.naming import NATIVE
from ir_op.op import IrOp, _as_provider_list

Outcome = Literal["selected", "unsupported", "rejected", "not reached", "fallback"]


@dataclass(frozen=True)
class ProviderDecision:
    provider: str
    outcome: Outcome
    reason: str


def explain(
    op: IrOp,
    args: Sequence[Any],
    kwargs: Mapping[str, Any] | None = None,
    priority: Sequence[str] | None = None,
) -> list[ProviderDecision]:
    """Walk ``priority`` (default: the op's current one, before filtering) for these arguments.

    Exactly one decision is ``selected`` or ``fallback``: the provider that :meth:`IrOp.dispatch`
    picks under that priority.
    """
    from ir_op.defaults import default_priority
    from ir_op.platforms import ensure_kernels_loaded

    ensure_kernels_loaded()
    kwargs = dict(kwargs or {})
    if priority is None:
        current = op.get_priority()
        providers = current if op._priority_is_set() else default_priority(op, compiling=False)
    else:
        providers = _as_provider_list(priority, op.name)
    for p in providers:
        if p not in op.impls:
            raise ValueError(op._unknown_provider_message(p))

    decisions: list[ProviderDecision] = []
    chosen: str | None = None
    for p in providers:
        impl = op.impls[p]
        if chosen is not None:
            decisions.append(ProviderDecision(p, "not reached", f"{chosen!r} was selected first"))
        elif not impl.supported:
            decisions.append(ProviderDecision(p, "unsupported", impl.unsupported_reason or ""))
        elif impl.supports_all_args:
            chosen = p
            decisions.append(ProviderDecision(p, "selected", "takes every argument"))
        elif impl.supports_args(*args, **kwargs):
            chosen = p
            decisions.append(ProviderDecision(p, "selected", "supports_args accepts these inputs"))
        else:
            decisions.append(ProviderDecision(p, "rejected", "supports_args rejects these inputs"))
    if chosen is None:
        why = "the priority is empty" if not providers else "no listed provider takes these inputs"
        decisions.append(ProviderDecision(NATIVE, "fallback", why))
    return decisions
