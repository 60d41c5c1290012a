"""Checks of arguments other than the rows, shared by the providers' ``supports_args``.

Like :mod:`ir_op.triton.rows`, each returns a Python ``bool`` on real tensors, FakeTensors and
symbolic shapes, and none reads the number of rows.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ir_op.triton.rows import on_platform_device


def on_device_of(t: Tensor, x: Tensor) -> bool:
    """Whether ``t`` is on ``x``'s device, ``x`` being on the platform's: the same kind of device
    (``get_device()`` is -1 for CPU and meta tensors alike) and the same index."""
    return on_platform_device(t) and t.get_device() == x.get_device()


def is_static_scale(scale: object, x: Tensor) -> bool:
    """Whether ``scale`` is a one-element float32 tensor on ``x``'s device (a static scale)."""
    return (
        isinstance(scale, Tensor)
        and scale.dtype == torch.float32
        and bool(scale.numel() == 1)
        and on_device_of(scale, x)
    )
