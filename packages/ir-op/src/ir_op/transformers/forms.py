"""Recognizing the modules that :func:`~ir_op.transformers.kernelize` routes to ir ops.

A module is recognized by what it computes, not by its class name: its attributes say what it
may be (a 1-D ``weight`` and an epsilon make a norm candidate; ``gate_proj``/``up_proj``/
``down_proj`` or ``gate_up_proj``/``down_proj`` Linears and an activation make a gated-MLP
candidate), and then its own ``forward`` is run on a *probe*: a shallow copy of the module whose
weights (or child Linears) are small random float32 stand-ins on the CPU. The probe's output is
compared with each form the ops compute; a module whose forward computes none of them is left
stock. So a model family with the same forms needs no new entry, a look-alike that computes
something else (a LayerNorm, a norm with a learned bias, a QuickGELU MLP) is not touched, and
probing never reads, moves or allocates the model's own weights (it works on meta models).
Class names are only a secondary signal: they decide whether a module that was not recognized is
worth a line in the report's ``skipped``.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS_ATTRIBUTES = ("variance_epsilon", "eps", "epsilon")
"""Names Hugging Face norms give their epsilon, tried in this order."""

ACTIVATION_ATTRIBUTES = ("act_fn", "activation_fn", "act")
"""Names Hugging Face MLPs give their activation module."""

NormWeightForm = Literal["weight", "offset"]
GateActivation = Literal["silu", "gelu", "gelu_tanh"]

_PROBE_EPS = 0.25  # large against the probe's small inputs: shows which attribute forward reads
_PROBE_ROWS = 3
_PROBE_HIDDEN = 8
_PROBE_INTERMEDIATE = 16


@dataclass(frozen=True)
class NormForm:
    """An RMSNorm's form: ``rms(x) * weight`` or Gemma's ``rms(x) * (offset + weight)``."""

    eps_attribute: str
    weight_form: NormWeightForm
    offset: float = 0.0


@dataclass(frozen=True)
class MlpForm:
    """A gated MLP's form: ``down(act(gate(x)) * up(x))``, gate and up in two Linears or one."""

    fused_input: bool  # True: one gate_up_proj Linear, [gate | up] along its output
    activation: GateActivation
    activation_attribute: str

    @property
    def op_name(self) -> str:
        return "silu_and_mul" if self.activation == "silu" else "gelu_and_mul"

    @property
    def approximate(self) -> str:
        return "tanh" if self.activation == "gelu_tanh" else "none"


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _reference_rms(x: Tensor, eps: float) -> Tensor:
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps)


def _close(a: object, b: Tensor) -> bool:
    return (
        isinstance(a, Tensor)
        and a.shape == b.shape
        and a.dtype == b.dtype
        and torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    )


def _takes_one_input(module: nn.Module) -> bool:
    """Whether the class forward takes exactly one required argument besides ``self``."""
    try:
        params = list(inspect.signature(type(module).forward).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    required = [
        p
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    return len(required) == 1


def _probe_copy(module: nn.Module) -> nn.Module:
    """A shallow copy (its own ``__dict__``) whose parameter and child dicts can be replaced
    without touching ``module``."""
    probe = copy.copy(module)
    object.__setattr__(probe, "_parameters", dict(module._parameters))
    object.__setattr__(probe, "_modules", dict(module._modules))
    return probe


def norm_candidate(module: nn.Module) -> bool:
    """Whether ``module`` has an RMSNorm's attributes: a 1-D floating ``weight`` parameter and
    a numeric epsilon."""
    weight = module._parameters.get("weight")
    if weight is None or weight.dim() != 1 or not weight.is_floating_point():
        return False
    return eps_attribute(module) is not None


def eps_attribute(module: nn.Module) -> str | None:
    for name in EPS_ATTRIBUTES:
        value = module.__dict__.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return name
    return None


def recognize_norm(module: nn.Module) -> NormForm | str:
    """The module's :class:`NormForm`, or why it is not an RMSNorm ir ops compute."""
    if not norm_candidate(module):
        return "no 1-D floating weight and numeric epsilon (variance_epsilon / eps)"
    if not _takes_one_input(module):
        return "its forward does not take a single input"
    eps_name = eps_attribute(module)
    assert eps_name is not None
    weight = module._parameters["weight"]
    assert weight is not None
    gen = _generator()
    hidden = weight.shape[0]
    x = torch.randn(_PROBE_ROWS, hidden, generator=gen) * 0.1
    w = torch.randn(hidden, generator=gen)
    probe = _probe_copy(module)
    probe._parameters["weight"] = nn.Parameter(w, requires_grad=False)
    probe.__dict__[eps_name] = _PROBE_EPS
    try:
        with torch.no_grad():
            out = type(module).forward(probe, x)
    except Exception as error:  # any failure means: not a form we know
        return f"its forward failed on a probe input ({type(error).__name__}: {error})"
    rms = _reference_rms(x, _PROBE_EPS)
    if _close(out, rms * w):
        return NormForm(eps_name, "weight")
    if _close(out, rms * (1.0 + w)):
        return NormForm(eps_name, "offset", 1.0)
    return "its forward computes neither rms(x) * weight nor rms(x) * (1 + weight)"


def _linear(in_features: int, out_features: int, bias: bool, gen: torch.Generator) -> nn.Linear:
    layer = nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(out_features, in_features, generator=gen) * 0.5)
        if layer.bias is not None:
            layer.bias.copy_(torch.randn(out_features, generator=gen))
    return layer


def is_plain_linear(module: object) -> bool:
    """An ``nn.Linear`` whose forward is torch's (not a quantized or adapter subclass) and
    whose weight is a plain floating-point tensor."""
    return (
        isinstance(module, nn.Linear)
        and type(module).forward is nn.Linear.forward
        and type(module.weight) is nn.Parameter
        and module.weight.is_floating_point()
        and "forward" not in module.__dict__
    )


def identify_activation(activation: object) -> GateActivation | None:
    """Which gate activation ``activation`` computes (probed on a range of values), if any."""
    if not callable(activation):
        return None
    v = torch.linspace(-6.0, 6.0, 97)
    try:
        with torch.no_grad():
            out = activation(v)
    except Exception:
        return None
    if _close(out, F.silu(v)):
        return "silu"
    if _close(out, F.gelu(v)):
        return "gelu"
    if _close(out, F.gelu(v, approximate="tanh")):
        return "gelu_tanh"
    return None


def _gate_activation(activation: GateActivation, v: Tensor) -> Tensor:
    if activation == "silu":
        return F.silu(v)
    return F.gelu(v, approximate="tanh" if activation == "gelu_tanh" else "none")


def mlp_candidate(module: nn.Module) -> bool:
    """Whether ``module`` has a gated MLP's children (and so is worth probing)."""
    children = module._modules
    return "down_proj" in children and (
        ("gate_proj" in children and "up_proj" in children) or "gate_up_proj" in children
    )


def recognize_mlp(module: nn.Module) -> MlpForm | str:
    """The module's :class:`MlpForm`, or why ir ops cannot compute it."""
    children = module._modules
    if not mlp_candidate(module):
        return "no down_proj with gate_proj and up_proj (or gate_up_proj)"
    if not _takes_one_input(module):
        return "its forward does not take a single input"
    fused_input = "gate_proj" not in children
    names = ("gate_up_proj", "down_proj") if fused_input else ("gate_proj", "up_proj", "down_proj")
    for name in names:
        if not is_plain_linear(children[name]):
            return f"{name} is not a plain nn.Linear ({type(children[name]).__name__})"
    if not fused_input:
        gate, up = children["gate_proj"], children["up_proj"]
        assert isinstance(gate, nn.Linear)
        assert isinstance(up, nn.Linear)
        if gate.weight.shape != up.weight.shape or gate.weight.dtype != up.weight.dtype:
            return "gate_proj and up_proj differ in shape or dtype"
        if gate.weight.device != up.weight.device or (gate.bias is None) != (up.bias is None):
            return "gate_proj and up_proj differ in device or bias"
    found = [a for a in ACTIVATION_ATTRIBUTES if a in module.__dict__ or a in children]
    if not found:
        return f"no activation attribute ({' / '.join(ACTIVATION_ATTRIBUTES)})"
    activation_name = found[0]
    activation = identify_activation(getattr(module, activation_name))
    if activation is None:
        return f"its {activation_name} is not SiLU, exact GELU or tanh GELU"

    gen = _generator()
    h, i = _PROBE_HIDDEN, _PROBE_INTERMEDIATE
    probe = _probe_copy(module)
    down_bias = children["down_proj"].bias is not None  # type: ignore[union-attr]
    probe._modules["down_proj"] = down = _linear(i, h, down_bias, gen)
    if fused_input:
        has_bias = children["gate_up_proj"].bias is not None  # type: ignore[union-attr]
        probe._modules["gate_up_proj"] = gate_up = _linear(h, 2 * i, has_bias, gen)
        gate_w, up_w = gate_up.weight[:i], gate_up.weight[i:]
        biases = gate_up.bias
        gate_b, up_b = (None, None) if biases is None else (biases[:i], biases[i:])
    else:
        has_bias = children["gate_proj"].bias is not None  # type: ignore[union-attr]
        probe._modules["gate_proj"] = gate = _linear(h, i, has_bias, gen)
        probe._modules["up_proj"] = up = _linear(h, i, has_bias, gen)
        gate_w, up_w, gate_b, up_b = gate.weight, up.weight, gate.bias, up.bias
    x = torch.randn(_PROBE_ROWS, h, generator=gen)
    try:
        with torch.no_grad():
            out = type(module).forward(probe, x)
            expected = down(
                _gate_activation(activation, F.linear(x, gate_w, gate_b)) * F.linear(x, up_w, up_b)
            )
    except Exception as error:
        return f"its forward failed on a probe input ({type(error).__name__}: {error})"
    if not _close(out, expected):
        return "its forward does not compute down(act(gate(x)) * up(x))"
    return MlpForm(fused_input, activation, activation_name)
