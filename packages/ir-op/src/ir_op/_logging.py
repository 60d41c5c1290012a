"""Logging helpers. ir-op logs through the standard ``logging`` module and never prints.

One exception, :func:`warning_visible_once`: a few failures must be seen by someone who never
configured logging (a kernel set that failed to load, an ``IR_OP_PRIORITY`` entry naming an op
or provider that does not exist), or a serving engine runs native kernels, or the wrong ones,
without a word. Those go through the ``ir_op`` logger like every other warning; only when no
handler anywhere would receive it (the application configured no logging, so the record would
reach the ``NullHandler`` below and vanish) is the message also written to ``sys.stderr``, as
Python's own last-resort handler would. ``warnings.warn`` was not used: its filters are keyed by
code location, so "once per kernel set" would need a registry of its own, and test runners that
turn warnings into errors would turn a recorded, survivable load failure into a crash.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableSet

logger = logging.getLogger("ir_op")
logger.addHandler(logging.NullHandler())


def warning_once(seen: MutableSet[str], key: str, msg: str, *args: object) -> None:
    """Log ``msg`` as a warning the first time ``key`` is seen in ``seen``.

    The caller owns ``seen`` (an op keeps its own set), so "once" means once per owner and a test
    that builds a fresh op sees the warning again.
    """
    if key in seen:
        return
    seen.add(key)
    logger.warning(msg, *args)


def _logging_configured(log: logging.Logger) -> bool:
    """Whether a record of ``log`` reaches a handler other than a ``NullHandler``."""
    current: logging.Logger | None = log
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def warning_visible_once(seen: MutableSet[str], key: str, msg: str, *args: object) -> None:
    """:func:`warning_once`, also written to stderr when the application configured no logging.

    An application that set the ``ir_op`` logger's level above ``WARNING`` silenced it on
    purpose, and gets nothing on stderr either.
    """
    if key in seen:
        return
    seen.add(key)
    logger.warning(msg, *args)
    if logger.isEnabledFor(logging.WARNING) and not _logging_configured(logger):
        print(msg % args if args else msg, file=sys.stderr)
