from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ir_compile.testing import inductor_caches_off
from ir_op import IrOp
from ir_op.testing import forced_platform, isolated_registry, preserved_priorities


@pytest.fixture
def isolated() -> Iterator[dict[str, IrOp]]:
    """An empty registry in a unique torch namespace, on the CPU platform."""
    with isolated_registry() as registry, forced_platform("cpu"):
        yield registry


@pytest.fixture
def compiling() -> Iterator[None]:
    """A fresh Dynamo, Inductor's caches off (a cache hit would run no pass), priorities kept."""
    torch._dynamo.reset()
    try:
        with inductor_caches_off(), preserved_priorities():
            yield
    finally:
        torch._dynamo.reset()
