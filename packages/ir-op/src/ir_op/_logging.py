"""Logging helpers. ir-op logs through the standard ``logging`` module and never prints."""

from __future__ import annotations

import logging
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
