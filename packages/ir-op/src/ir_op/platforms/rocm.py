"""AMD GPUs: a ROCm (HIP) build of torch, which exposes its devices as ``cuda``."""

from __future__ import annotations

import importlib.util
import sys

import torch

from ir_op.platforms.base import Platform

AITER_PROVIDER = "aiter"
"""AMD's AITER library, registered as a provider by ir-kernels-rocm where it is installed."""


def aiter_installed() -> bool:
    """Whether the ``aiter`` package can be found (it is not imported here: that is slow)."""
    if sys.modules.get("aiter") is not None:
        return True
    try:
        return importlib.util.find_spec("aiter") is not None
    except (ImportError, ValueError):  # a broken parent package, or a module without a spec
        return False


class RocmPlatform(Platform):
    name = "rocm"
    device_type = "cuda"  # HIP devices are torch "cuda" devices
    kernel_set = "rocm"

    @classmethod
    def is_available(cls) -> bool:
        return torch.version.hip is not None and torch.cuda.is_available()

    def eager_providers(self) -> list[str]:
        """AITER's kernels first where AITER is installed, then the rocm kernel set, then native.

        Only ``rms_norm`` and ``fused_add_rms_norm`` have an ``aiter`` provider; other ops skip
        the name. Where AITER cannot run after all, its provider is unsupported and priorities
        drop it.
        """
        providers = super().eager_providers()
        return [AITER_PROVIDER, *providers] if aiter_installed() else providers
