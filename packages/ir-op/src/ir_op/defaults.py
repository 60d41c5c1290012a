"""The priority an op takes before anyone sets one.

At first use each op takes the entries ``IR_OP_PRIORITY`` gives it, then the current platform's
defaults for the mode (eager or compile) that are not already listed. A platform default never
names a provider that is not registered: a GPU machine with ir-op alone runs native, silently.
A provider that ``IR_OP_PRIORITY`` names must exist, or the first use of the op says so.
"""

from __future__ import annotations

import os

from ir_op.op import IrOp
from ir_op.platforms import current_platform
from ir_op.priority import ENV_VAR, parse_priority_text

_env_cache: tuple[str, dict[str, tuple[str, ...]]] | None = None


def env_priorities() -> dict[str, tuple[str, ...]]:
    """``IR_OP_PRIORITY`` parsed (op names are not checked: ops may register later)."""
    global _env_cache
    text = os.environ.get(ENV_VAR, "")
    if _env_cache is None or _env_cache[0] != text:
        _env_cache = (text, parse_priority_text(text, source=ENV_VAR))
    return _env_cache[1]


def default_priority(op: IrOp, compiling: bool) -> list[str]:
    """The provider names ``op`` takes by default (may be empty)."""
    user = list(env_priorities().get(op.name, ()))
    for provider in user:
        if provider not in op.impls:
            raise ValueError(f"{op._unknown_provider_message(provider)} (from {ENV_VAR})")
    platform = current_platform().get_default_ir_op_priority(compiling).get(op.name, ())
    return user + [p for p in platform if p not in user and p in op.impls]
