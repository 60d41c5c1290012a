"""Entry points: a ``torch.compile`` backend, and installing the passes into an Inductor config.

Dynamo traces the model before any backend runs. IR op nodes reach the passes only while torch
wrap is on (the default, see :func:`ir_op.enable_torch_wrap`): each call is then one opaque
``torch.ops.ir.<op>`` node. With torch wrap off, Dynamo inlines whatever implementation eager
dispatch picks, so there is nothing to fuse or lower and the compile follows eager mode's choice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, MutableMapping
from typing import Any, cast

import torch
from torch._inductor.custom_graph_pass import CustomGraphPass

from ir_compile import inductor_patches
from ir_compile.inductor_patches import opaque
from ir_compile.pass_manager import ChainedPass, IrPassManager
from ir_compile.priorities import PriorityLike
from ir_compile.report import CompileReport


def _install_patches() -> None:
    inductor_patches.install()
    opaque.install()


class IrCompileBackend:
    """A ``torch.compile`` backend: Inductor with ir-compile's passes installed.

    :attr:`report` describes the last graph it compiled (with its nested regions); Dynamo calls
    the backend once per graph, so a model with graph breaks is compiled in several calls.
    :attr:`compiles` counts the calls (a recompile adds one).
    """

    def __init__(self, priority: PriorityLike = None, fusions: Collection[str] | None = None):
        self.manager = IrPassManager(priority, fusions)
        self.compiles = 0

    @property
    def report(self) -> CompileReport:
        return self.manager.report

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        from torch._inductor.compile_fx import compile_fx

        _install_patches()
        self.manager.reset_report()
        self.compiles += 1
        compiled: Any = compile_fx(
            gm, example_inputs, config_patches=self.manager.inductor_config()
        )
        return cast(Callable[..., Any], compiled)

    def __repr__(self) -> str:
        return (
            f"ir_compile.backend(priority={self.manager.priority!r}, "
            f"fusions={list(self.manager.fusions)!r})"
        )


def backend(
    priority: PriorityLike = None, fusions: Collection[str] | None = None
) -> IrCompileBackend:
    """``torch.compile(model, backend=ir_compile.backend())``: Inductor with the IR passes.

    ``priority`` overrides the lowering priority of the ops it names for this backend's
    compiles (an ``IrOpPriorityConfig``, a mapping or the text form
    ``"rms_norm=cuda,native;..."``; op and provider names are checked now). Other ops lower
    with ``op.get_priority(compiling=True)``. ``fusions`` names the fusions to apply
    (:data:`ir_compile.FUSION_NAMES`; ``None``: all, empty: none).
    """
    return IrCompileBackend(priority, fusions)


def install(
    inductor_config: MutableMapping[str, Any],
    *,
    priority: PriorityLike = None,
    fusions: Collection[str] | None = None,
) -> IrPassManager:
    """Add ir-compile's passes to an Inductor config dict that an engine passes to Inductor
    (``compile_fx(..., config_patches=inductor_config)``); returns the pass manager, whose
    :attr:`~IrPassManager.report` the engine may read and reset.

    Passes already in the dict run first (an engine's own passes see the IR op nodes before they
    are lowered); a plain callable there must be a ``CustomGraphPass`` for the post-grad slot,
    since Inductor cannot key its caches on it. Installing twice replaces the earlier
    ir-compile passes. Also arms the Inductor patches (fallback allow-list, opaque arguments).
    """
    manager = IrPassManager(priority, fusions)
    entries = manager.inductor_config()
    for key in ("pre_grad_custom_pass", "post_grad_custom_post_pass"):
        existing = _without_ir_compile(inductor_config.get(key))
        if existing is None:
            continue
        if key == "post_grad_custom_post_pass" and not isinstance(existing, CustomGraphPass):
            raise TypeError(
                f"inductor_config[{key!r}] is {existing!r}, not a CustomGraphPass: Inductor "
                "cannot key its caches on it; make it a torch._inductor.custom_graph_pass."
                "CustomGraphPass (with a uuid) so ir-compile's passes can run after it"
            )
        entries[key] = ChainedPass([*_flatten(existing), entries[key]])
    inductor_config.update(entries)
    _install_patches()
    return manager


def _is_ir_compile_pass(graph_pass: object) -> bool:
    from ir_compile.passes.inplace import InplaceFunctionalizationPass

    return isinstance(graph_pass, (IrPassManager, InplaceFunctionalizationPass))


def _flatten(graph_pass: object) -> list[Any]:
    if isinstance(graph_pass, ChainedPass):
        return list(graph_pass.passes)
    return [graph_pass]


def _without_ir_compile(graph_pass: object) -> object:
    """``graph_pass`` without ir-compile's own passes (from an earlier install)."""
    if graph_pass is None or _is_ir_compile_pass(graph_pass):
        return None
    rest = [p for p in _flatten(graph_pass) if not _is_ir_compile_pass(p)]
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else ChainedPass(rest)
