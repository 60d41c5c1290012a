"""The CPU: no kernel set, so ops run their native implementations."""

from __future__ import annotations

from ir_op.platforms.base import Platform


class CpuPlatform(Platform):
    name = "cpu"
    device_type = "cpu"
    kernel_set = None

    @classmethod
    def is_available(cls) -> bool:
        return True
