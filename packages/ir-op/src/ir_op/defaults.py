"""The priority an op takes before anyone sets one.

At first use each op takes the entries ``IR_OP_PRIORITY`` gives it, then the current platform's
defaults for the mode (eager or compile) that are not already listed. A platform default never
names a provider that is not registered: a GPU machine with ir-op alone runs native, silently.
A provider that ``IR_OP_PRIORITY`` names must exist, or the first use of the op says so.

``IR_OP_PRIORITY`` is checked as a whole at the first default applied (kernel sets are loaded
by then, so every op and provider that will exist does): an entry naming an op that does not
exist, or a provider an op does not have, is written to stderr once, even without logging set
up (see :func:`ir_op._logging.warning_visible_once`), with close matches for a misspelt op.
``ir-op info --check`` reports the same problems (:func:`env_priority_problems`).
"""

from __future__ import annotations

import difflib
import os

from ir_op import platforms
from ir_op._logging import warning_visible_once
from ir_op.op import IrOp
from ir_op.platforms import current_platform
from ir_op.priority import ENV_VAR, parse_priority_text

_env_cache: tuple[str, dict[str, tuple[str, ...]]] | None = None
_warned: set[str] = set()


def env_priorities() -> dict[str, tuple[str, ...]]:
    """``IR_OP_PRIORITY`` parsed (op names are not checked: ops may register later)."""
    global _env_cache
    text = os.environ.get(ENV_VAR, "")
    if _env_cache is None or _env_cache[0] != text:
        _env_cache = (text, parse_priority_text(text, source=ENV_VAR))
    return _env_cache[1]


def unknown_op_message(name: str, source: str) -> str:
    """``source`` names op ``name``, which is not registered: with close matches, if any."""
    close = difflib.get_close_matches(name, list(IrOp.registry), n=3)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    known = ", ".join(sorted(IrOp.registry)) or "(none)"
    return f"unknown op {name!r} in {source}; {hint + ' ' if hint else ''}registered ops: {known}"


def env_priority_problems() -> list[str]:
    """What is wrong with ``IR_OP_PRIORITY``: text that does not parse, entries naming an op that
    is not registered or a provider that op does not have. Empty when all is well.

    Meaningful once the kernel sets are loaded (before, their providers are missing).
    """
    try:
        entries = env_priorities()
    except (TypeError, ValueError) as e:
        return [str(e)]
    problems: list[str] = []
    for name, providers in entries.items():
        op = IrOp.registry.get(name)
        if op is None:
            problems.append(f"{unknown_op_message(name, ENV_VAR)}; the entry is ignored")
            continue
        problems += [
            f"{op._unknown_provider_message(p)} (from {ENV_VAR})"
            for p in providers
            if p not in op.impls
        ]
    return problems


def _warn_env_problems() -> None:
    text = os.environ.get(ENV_VAR, "")
    if not text.strip() or platforms._kernels_state != "loaded":
        return  # still loading (a kernel set reading a priority): a later one may define the op
    for problem in env_priority_problems():
        warning_visible_once(_warned, f"{text}\0{problem}", "ir-op: %s", problem)


def default_priority(op: IrOp, compiling: bool) -> list[str]:
    """The provider names ``op`` takes by default (may be empty)."""
    _warn_env_problems()
    user = list(env_priorities().get(op.name, ()))
    for provider in user:
        if provider not in op.impls:
            raise ValueError(f"{op._unknown_provider_message(provider)} (from {ENV_VAR})")
    platform = current_platform().get_default_ir_op_priority(compiling).get(op.name, ())
    return user + [p for p in platform if p not in user and p in op.impls]
