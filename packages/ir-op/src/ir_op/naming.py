"""Rules for op and provider names, shared by every registration path."""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"[a-z_][a-z_0-9]*")
"""Op and provider names: lowercase identifiers, so they are valid torch.library names too."""

NATIVE = "native"
"""The provider every op has: its defining PyTorch function."""

UNFUSED = "unfused"
"""Reserved for composite ops: run each component through its own dispatch."""

RESERVED_PROVIDERS: tuple[str, ...] = (NATIVE, UNFUSED)


def validate_name(name: object, kind: str) -> str:
    """Return ``name`` if it is a valid op or provider name, else raise ``ValueError``.

    ``kind`` says what is being named ("op" or "provider") and goes into the message.
    """
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(
            f"{kind} name {name!r} is invalid: it must match ^[a-z_][a-z_0-9]*$ "
            "(a lowercase letter or underscore, then lowercase letters, digits or underscores)"
        )
    return name
