"""Gated MLPs routed to one gate-and-up GEMM and :func:`ir_op.ops.silu_and_mul` /
:func:`ir_op.ops.gelu_and_mul`.

``down(act(gate(x)) * up(x))`` becomes ``down(op(x @ [gate | up].T))``: one GEMM of width
``2 * intermediate`` instead of two, and one fused activation kernel instead of the activation
and the product.

The fused weight without a second copy: the MLP's two stock parameters are made views into one
``[2 * intermediate, hidden]`` tensor (``gate_proj.weight.data = fused[:I]``, ``up_proj.weight
.data = fused[I:]``). They stay the same ``Parameter`` objects under the same names, with the
same shapes and values, so ``state_dict()`` has the stock keys, ``load_state_dict`` (which
copies into parameters in place) writes straight into the fused weight, optimizers and tied
references keep working, and the memory is the stock model's. The fused tensor is a plain
attribute of the MLP, not a parameter or buffer, so it never appears in ``state_dict()`` and
``.to()`` does not move it a second time. Saving: ``save_pretrained`` finds the two views share
one storage and clones each into its own tensor while it writes (transformers does this for any
disjoint shared tensors), so the file has the stock layout and loads into a stock model.

What breaks the views, and how each is handled:

- ``.to()``, ``.half()``, ``.cuda()``, ``to_empty()`` give the parameters new, separate storage;
  the MLP's ``_apply`` is wrapped to fuse them again right after (the old fused tensor is
  dropped, so a move never leaves a copy behind).
- Anything else that replaces a parameter's storage (``param.data = ...``,
  ``load_state_dict(assign=True)``, a deep copy) is caught by a pointer check at the next eager
  forward, which fuses again (a ``copy.deepcopy`` of a kernelized model holds both until then).

Costs: the pointer check is about 2 µs per call (measured on a shared 2-core CPU); re-fusing
is one copy of the MLP's gate and up weights, transiently doubling them for that one MLP.
Concatenating the weights on every call instead would copy ``2 * I * H`` elements per call (for
a Llama-3-8B layer 235 MB, more than the GEMM reads), so it is no option at decode sizes.

A module whose gate and up already are one ``gate_up_proj`` Linear (Phi-3) keeps its weight and
only gets the fused activation.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ir_op.nn import needs_autograd
from ir_op.ops import gelu_and_mul, silu_and_mul
from ir_op.transformers.forms import MlpForm
from ir_op.transformers.norm import KERNELIZED_ATTRIBUTE


def _linears(module: nn.Module) -> tuple[nn.Linear, nn.Linear]:
    gate, up = module._modules["gate_proj"], module._modules["up_proj"]
    assert isinstance(gate, nn.Linear)
    assert isinstance(up, nn.Linear)
    return gate, up


def _child(module: nn.Module, name: str) -> nn.Module:
    child = module._modules[name]
    assert child is not None
    return child


def _gated(module: nn.Module, gate_up: Tensor) -> Tensor:
    """The down projection of the fused activation of ``[gate | up]``.

    The module holds the GELU mode as a string (``None`` for SiLU), not the op object: a
    ``copy.deepcopy`` of the model must not copy the op.
    """
    approximate: str | None = module.__dict__["_ir_gelu_approximate"]
    if approximate is None:
        activated: Tensor = silu_and_mul(gate_up)
    else:
        activated = gelu_and_mul(gate_up, approximate)
    out: Tensor = _child(module, "down_proj")(activated)
    return out


def _gate_up_tensors(module: nn.Module) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """gate and up weights and biases, read from the parameter dicts (``module.gate_proj.weight``
    costs two ``nn.Module.__getattr__`` calls, a few µs, on every forward)."""
    gate = module._modules["gate_proj"]._parameters  # type: ignore[union-attr]
    up = module._modules["up_proj"]._parameters  # type: ignore[union-attr]
    gate_w, up_w = gate["weight"], up["weight"]
    assert gate_w is not None
    assert up_w is not None
    return gate_w, up_w, gate.get("bias"), up.get("bias")


def _pointers(tensors: tuple[Tensor | None, ...]) -> tuple[int, ...]:
    return tuple(-1 if t is None else t.data_ptr() for t in tensors)


def _views_intact(module: nn.Module) -> bool:
    """Whether gate and up weights (and biases) still are the halves of the fused tensors.

    The addresses recorded when they were fused identify them: the fused tensors are kept
    alive, so no other storage can take those addresses, and anything that gives a parameter
    new storage (``.data =``, ``assign=True`` loading, a dtype or device change) changes its
    address.
    """
    expected: tuple[int, ...] = module.__dict__["_ir_gate_up_pointers"]
    return _pointers(_gate_up_tensors(module)) == expected


def _fuse_pair(gate: Tensor, up: Tensor) -> Tensor:
    """One tensor holding ``gate`` then ``up`` along dim 0; the two parameters become views."""
    fused = torch.empty(
        (gate.shape[0] + up.shape[0], *gate.shape[1:]), dtype=gate.dtype, device=gate.device
    )
    if fused.device.type != "meta":
        with torch.no_grad():
            fused[: gate.shape[0]].copy_(gate.detach())
            fused[gate.shape[0] :].copy_(up.detach())
    # ``.data =`` keeps each Parameter object (and its requires_grad) while sharing the storage.
    gate.data = fused[: gate.shape[0]]
    up.data = fused[gate.shape[0] :]
    return fused


def fuse_gate_up(module: nn.Module) -> None:
    """Make ``gate_proj``/``up_proj`` weights (and biases) views into one fused tensor each."""
    gate, up = _linears(module)
    # Drop the old fused tensors first, so re-fusing after a move holds at most one extra copy.
    module.__dict__["_ir_gate_up_weight"] = None
    module.__dict__["_ir_gate_up_bias"] = None
    module.__dict__["_ir_gate_up_weight"] = _fuse_pair(gate.weight, up.weight)
    if gate.bias is not None and up.bias is not None:
        module.__dict__["_ir_gate_up_bias"] = _fuse_pair(gate.bias, up.bias)
    module.__dict__["_ir_gate_up_pointers"] = _pointers(_gate_up_tensors(module))


def _stock_forward(module: nn.Module, x: Tensor) -> Tensor:
    out: Tensor = type(module).forward(module, x)
    return out


def _two_linear_forward(self: nn.Module, x: Tensor) -> Tensor:
    if needs_autograd(x, *_gate_up_tensors(self)):
        return _stock_forward(self, x)
    if not torch.compiler.is_compiling() and not _views_intact(self):
        fuse_gate_up(self)
    gate_up = F.linear(x, self.__dict__["_ir_gate_up_weight"], self.__dict__["_ir_gate_up_bias"])
    return _gated(self, gate_up)


def _fused_linear_forward(self: nn.Module, x: Tensor) -> Tensor:
    gate_up = _child(self, "gate_up_proj")
    assert isinstance(gate_up, nn.Linear)
    if needs_autograd(x, gate_up.weight, gate_up.bias):
        return _stock_forward(self, x)
    return _gated(self, gate_up(x))


def _apply_and_refuse(
    self: nn.Module, fn: Callable[[Tensor], Tensor], recurse: bool = True
) -> nn.Module:
    type(self)._apply(self, fn, recurse)  # type: ignore[no-untyped-call]
    fuse_gate_up(self)
    return self


def patch_mlp(module: nn.Module, form: MlpForm) -> None:
    """Route ``module`` (recognized as ``form``) through one gate-and-up GEMM and the fused
    activation op, in place."""
    module.__dict__["_ir_gelu_approximate"] = (
        None if form.activation == "silu" else form.approximate
    )
    forward: Callable[[nn.Module, Tensor], Tensor] = _fused_linear_forward
    if not form.fused_input:
        fuse_gate_up(module)
        module.__dict__["_apply"] = types.MethodType(_apply_and_refuse, module)
        forward = _two_linear_forward
    module.__dict__[KERNELIZED_ATTRIBUTE] = form.op_name
    module.__dict__["forward"] = types.MethodType(forward, module)
