"""Fixtures of the cuda kernel set's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ir_op.testing import preserved_priorities
from ir_op.testing.pytest_plugin import DeviceUnderTest


@pytest.fixture
def device(ir_device: DeviceUnderTest) -> Iterator[str]:
    """Where the kernels' test tensors go (``"cuda"``, or ``"cpu"`` while the platform is
    emulated); skips in sessions for other platforms. Priorities set in the test are undone."""
    if ir_device.name != "cuda":
        pytest.skip("the kernels run on the cuda platform (real or emulated) only")
    with preserved_priorities():
        yield ir_device.tensor_device
