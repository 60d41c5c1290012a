"""RMSNorm modules routed to :func:`ir_op.ops.rms_norm` by an instance-level ``forward``.

The module keeps its class, its ``weight`` parameter and its epsilon attribute; only
``module.forward`` (an instance attribute, which ``nn.Module.__call__`` finds before the class's)
changes, so the checkpoint layout, hooks on the module and ``isinstance`` checks are as stock,
and ``type(module).forward`` stays the stock forward that the patched one falls back to.

- ``rms(x) * weight`` (Llama, Mistral, Qwen2/3 and their q/k norms): ``ops.rms_norm(x, weight,
  eps)``, which is what the stock forward computes bit for bit when the weight has ``x``'s
  dtype (the normalized row rounded to ``x.dtype``, then multiplied by the weight). With another
  weight dtype the stock forward returns the promoted dtype, which the op does not, so such
  calls run the stock forward.
- ``rms(x) * (1 + weight)`` in float32 (Gemma 2/3): ``ops.rms_norm(x, 1 + weight.float(), eps)``,
  a float32 weight: the op applies it to the float32 normalized row and rounds once to
  ``x.dtype``, which is Gemma's ``(x.float() normalized * (1 + w.float())).type_as(x)``. The
  float32 ``1 + w`` is kept between calls in eager mode and recomputed when the weight's storage
  or version counter changes (``load_state_dict`` copies in place and bumps the version;
  ``.to()`` gives new storage), so a weight loaded after ``kernelize`` is the one used; under
  ``torch.compile`` it is computed in the graph, where Inductor folds it into a neighbour.

When autograd would record the call (grad mode on, input or weight requiring grad) the stock
forward runs: training through a kernelized model is training the stock model.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ir_op.nn import needs_autograd
from ir_op.ops import rms_norm
from ir_op.transformers.forms import NormForm

KERNELIZED_ATTRIBUTE = "_ir_kernelized"
"""Instance attribute naming the op a kernelized module runs (set by kernelize, read to stay
idempotent)."""


def _stock_forward(module: nn.Module, x: Tensor) -> Tensor:
    out: Tensor = type(module).forward(module, x)
    return out


def _weight(module: nn.Module) -> Tensor:
    weight = module._parameters["weight"]
    assert weight is not None  # recognize_norm checked it
    return weight


def _eps(module: nn.Module) -> float:
    eps: float = module.__dict__[module.__dict__["_ir_eps_attribute"]]
    return eps


def _weighted_forward(self: nn.Module, x: Tensor) -> Tensor:
    weight = _weight(self)
    if x.dtype != weight.dtype or needs_autograd(x, weight):
        return _stock_forward(self, x)
    out: Tensor = rms_norm(x, weight, _eps(self))
    return out


def offset_weight(module: nn.Module, weight: Tensor, offset: float) -> Tensor:
    """``offset + weight`` in float32, cached on ``module`` in eager mode (see module doc)."""
    if torch.compiler.is_compiling():
        return weight.float() + offset
    cached: tuple[Tensor, int, Tensor] | None = module.__dict__.get("_ir_offset_weight")
    if cached is not None:
        source, version, value = cached
        # ``source`` holds the storage it was computed from, so a new weight cannot reuse its
        # address: equal pointers and versions mean the same, unchanged values.
        if (
            source.data_ptr() == weight.data_ptr()
            and version == weight._version
            and source.device == weight.device
            and source.dtype == weight.dtype
        ):
            return value
    value = weight.detach().float() + offset
    module.__dict__["_ir_offset_weight"] = (weight.detach(), weight._version, value)
    return value


def _offset_forward(self: nn.Module, x: Tensor) -> Tensor:
    weight = _weight(self)
    if needs_autograd(x, weight):
        return _stock_forward(self, x)
    w32 = offset_weight(self, weight, self.__dict__["_ir_weight_offset"])
    out: Tensor = rms_norm(x, w32, _eps(self))
    return out


def patch_norm(module: nn.Module, form: NormForm) -> None:
    """Route ``module`` (recognized as ``form``) through ``ops.rms_norm``, in place."""
    attributes: dict[str, Any] = {
        "_ir_eps_attribute": form.eps_attribute,
        KERNELIZED_ATTRIBUTE: "rms_norm",
    }
    forward: Callable[[nn.Module, Tensor], Tensor] = _weighted_forward
    if form.weight_form == "offset":
        attributes["_ir_weight_offset"] = form.offset
        forward = _offset_forward
    # Plain attributes, set past nn.Module.__setattr__: none is a tensor or module.
    module.__dict__.update(attributes)
    module.__dict__["forward"] = types.MethodType(forward, module)
