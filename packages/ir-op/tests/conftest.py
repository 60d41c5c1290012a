from __future__ import annotations

from collections.abc import Iterator

import pytest

from ir_op import IrOp
from ir_op.testing import forced_platform, isolated_registry, preserved_priorities


@pytest.fixture
def isolated() -> Iterator[dict[str, IrOp]]:
    """An empty registry in a unique torch namespace, on the CPU platform."""
    with isolated_registry() as registry, forced_platform("cpu"):
        yield registry


@pytest.fixture
def native_priorities() -> Iterator[None]:
    """Pin every real op to its native implementation inside the test.

    Tests of the ops' semantics are about the native implementations; in a session whose
    platform has a kernel set, its providers would otherwise run (kernel sets test themselves
    with ir_op.testing.conformance).
    """
    with preserved_priorities():
        for op in list(IrOp.registry.values()):
            op.set_default(["native"])
        yield
