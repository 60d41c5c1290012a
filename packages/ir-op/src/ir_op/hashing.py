"""Content hashes of implementation sources, for compile caches.

A compiled graph that inlined a provider's implementation is stale once that implementation's
source changes. The hash follows the file's current text (read each time: a file edited and then
restored hashes as before), so a cache keyed on it is never served a graph built from other code.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any


def source_file(fn: Callable[..., Any]) -> Path:
    """The file that defines ``fn`` (after unwrapping decorators)."""
    target = inspect.unwrap(fn)
    try:
        return Path(inspect.getsourcefile(target) or inspect.getfile(target))
    except TypeError as e:
        raise ValueError(f"cannot find the source file of {fn!r}: {e}") from None


def hash_files(*paths: Path) -> str:
    """sha256 over the given files' bytes, in order, as a hex string."""
    digest = hashlib.sha256()
    for path in paths:
        data = path.read_bytes()
        digest.update(str(len(data)).encode())
        digest.update(b"\0")
        digest.update(data)
    return digest.hexdigest()
