"""``kernelize(model)``: a Hugging Face transformers model's norms and gated MLPs on ir ops."""

from __future__ import annotations

from torch import nn

from ir_op._logging import logger
from ir_op.transformers.forms import (
    MlpForm,
    NormForm,
    mlp_candidate,
    norm_candidate,
    recognize_mlp,
    recognize_norm,
)
from ir_op.transformers.mlp import patch_mlp
from ir_op.transformers.norm import KERNELIZED_ATTRIBUTE, patch_norm
from ir_op.transformers.report import KernelizeReport

FUSED_ADD_NOTE = (
    "fused_add_rms_norm: not used in eager mode. The residual add that feeds each norm is a "
    "line of the decoder layer's forward (hidden_states = residual + hidden_states), between "
    "two module calls; fusing it means rewriting that forward (a copy of transformers' code per "
    "model family and release) or intercepting every tensor op of the layer (a "
    "TorchFunctionMode costs more host time per layer than the fusion saves). Under "
    "torch.compile(model, backend=ir_compile.backend()) ir-compile's add_rms_norm fusion "
    "rewrites add + rms_norm into fused_add_rms_norm in the graph."
)

ROTARY_SKIP = (
    "rotary embedding left stock: transformers applies it in a module-level function "
    "(apply_rotary_pos_emb) called from the attention forward, so routing it would patch that "
    "function for every model of the family in the process, not this model; and it multiplies "
    "by cos/sin already rounded to the activation dtype, with a rounding per product, where "
    "ops.rotary_embedding rotates in float32 from a [max_position, rotary_dim] cache"
)

_NORM_NAME_HINTS = ("rmsnorm", "layernorm", "norm")
_MLP_NAME_HINTS = ("mlp", "feedforward", "ffn")


def _name_hints(module: nn.Module, hints: tuple[str, ...]) -> bool:
    name = type(module).__name__.lower()
    return any(hint in name for hint in hints)


def _already_replaced_forward(module: nn.Module) -> bool:
    """Someone else (an accelerate hook, a PEFT wrapper) replaced this instance's forward."""
    return "forward" in module.__dict__ and KERNELIZED_ATTRIBUTE not in module.__dict__


def kernelize(model: nn.Module) -> KernelizeReport:
    """Route ``model``'s RMSNorms and gated MLPs through ir ops, in place; return what was done.

    Every module is recognized by what its forward computes (see :mod:`ir_op.transformers.forms`),
    not by class name, so any model family with the same forms is covered:

    - RMSNorms of the form ``rms(x) * weight`` (decoder, final and Qwen3's per-head q/k norms)
      and Gemma's ``rms(x) * (1 + weight)`` in float32 run ``ops.rms_norm``
      (:mod:`ir_op.transformers.norm`);
    - gated MLPs ``down(act(gate(x)) * up(x))``, with gate and up in two Linears or one
      ``gate_up_proj``, and SiLU, exact GELU or tanh GELU, run one gate-and-up GEMM into
      ``ops.silu_and_mul`` / ``ops.gelu_and_mul`` (:mod:`ir_op.transformers.mlp`; no second
      copy of the weights, the checkpoint layout unchanged).

    The model keeps its classes, parameters, ``state_dict`` keys, shapes and values; only the
    recognized modules' instance ``forward`` changes. Calling it again changes nothing and
    returns an equal report. With grad mode on and parameters or inputs requiring grad, the
    kernelized modules run their stock forward, so gradients are the stock model's. Nothing
    here imports transformers: it works on any ``nn.Module`` built of such forms.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"kernelize: model must be a torch.nn.Module, got {type(model).__name__}")
    report = KernelizeReport()
    for path, module in model.named_modules():
        done = module.__dict__.get(KERNELIZED_ATTRIBUTE)
        if done is not None:
            report.replaced[path] = done
            continue
        if norm_candidate(module) or _name_hints(module, _NORM_NAME_HINTS):
            _kernelize_norm(path, module, report)
        elif mlp_candidate(module) or _name_hints(module, _MLP_NAME_HINTS):
            _kernelize_mlp(path, module, report)
        elif _name_hints(module, ("rotary",)):
            report.skipped[path] = ROTARY_SKIP
    if report.count("rms_norm"):
        report.notes.append(FUSED_ADD_NOTE)
    logger.info("kernelize: %s", report)
    return report


def _kernelize_norm(path: str, module: nn.Module, report: KernelizeReport) -> None:
    if _already_replaced_forward(module):
        report.skipped[path] = "its forward was already replaced by someone else"
        return
    form = recognize_norm(module)
    if isinstance(form, NormForm):
        patch_norm(module, form)
        report.replaced[path] = "rms_norm"
    elif _name_hints(module, _NORM_NAME_HINTS):
        report.skipped[path] = f"{type(module).__name__}: {form}"


def _kernelize_mlp(path: str, module: nn.Module, report: KernelizeReport) -> None:
    if _already_replaced_forward(module):
        report.skipped[path] = "its forward was already replaced by someone else"
        return
    form = recognize_mlp(module)
    if isinstance(form, MlpForm):
        patch_mlp(module, form)
        report.replaced[path] = form.op_name
    else:
        report.skipped[path] = f"{type(module).__name__}: {form}"
