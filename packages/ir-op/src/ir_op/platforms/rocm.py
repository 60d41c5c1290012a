"""AMD GPUs: a ROCm (HIP) build of torch, which exposes its devices as ``cuda``."""

from __future__ import annotations

import torch

from ir_op.platforms.base import Platform


class RocmPlatform(Platform):
    name = "rocm"
    device_type = "cuda"  # HIP devices are torch "cuda" devices
    kernel_set = "rocm"

    @classmethod
    def is_available(cls) -> bool:
        return torch.version.hip is not None and torch.cuda.is_available()
