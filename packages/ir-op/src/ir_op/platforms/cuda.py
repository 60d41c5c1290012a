"""NVIDIA GPUs: a CUDA build of torch (not HIP) that sees a device."""

from __future__ import annotations

import torch

from ir_op.platforms.base import Platform


class CudaPlatform(Platform):
    name = "cuda"
    device_type = "cuda"
    kernel_set = "cuda"

    @classmethod
    def is_available(cls) -> bool:
        return torch.version.hip is None and torch.cuda.is_available()
