from __future__ import annotations

from collections.abc import Iterator

import pytest

from ir_op import IrOp
from ir_op.testing import forced_platform, isolated_registry


@pytest.fixture
def isolated() -> Iterator[dict[str, IrOp]]:
    """An empty registry in a unique torch namespace, on the CPU platform."""
    with isolated_registry() as registry, forced_platform("cpu"):
        yield registry
