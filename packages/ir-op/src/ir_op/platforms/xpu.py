"""Intel GPUs, through ``torch.xpu``."""

from __future__ import annotations

import torch

from ir_op.platforms.base import Platform


class XpuPlatform(Platform):
    name = "xpu"
    device_type = "xpu"
    kernel_set = "xpu"

    @classmethod
    def is_available(cls) -> bool:
        xpu = getattr(torch, "xpu", None)
        return xpu is not None and bool(xpu.is_available())
