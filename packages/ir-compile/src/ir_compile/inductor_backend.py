"""Entry points: a ``torch.compile`` backend, and installing the passes into an Inductor config.

Dynamo traces the model before any backend runs. IR op nodes reach the passes only while torch
wrap is on (the default, see :func:`ir_op.enable_torch_wrap`): each call is then one opaque
``torch.ops.ir.<op>`` node. With torch wrap off, Dynamo inlines whatever implementation eager
dispatch picks, so there is nothing to fuse or lower and the compile follows eager mode's choice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, MutableMapping
from typing import Any, cast

import torch
from torch._inductor.custom_graph_pass import CustomGraphPass

from ir_compile import compile_options, inductor_patches
from ir_compile.inductor_patches import opaque
from ir_compile.pass_manager import ChainedPass, IrPassManager
from ir_compile.priorities import PriorityLike
from ir_compile.report import CompileReport


def _install_patches() -> None:
    inductor_patches.install()
    opaque.install()


class IrCompileBackend:
    """A ``torch.compile`` backend: Inductor with ir-compile's passes installed.

    :attr:`options` holds the Inductor config entries of its ``mode`` or ``options``
    (:mod:`ir_compile.compile_options`); each compile hands them to ``compile_fx`` with the
    entries that install the passes, so they apply to that compile only. :attr:`report`
    describes the last graph it compiled (with its nested regions); Dynamo calls the backend
    once per graph, so a model with graph breaks is compiled in several calls. :attr:`compiles`
    counts the calls (a recompile adds one).
    """

    def __init__(
        self,
        priority: PriorityLike = None,
        fusions: Collection[str] | None = None,
        *,
        mode: str | None = None,
        options: Mapping[str, Any] | None = None,
    ):
        self.options = compile_options.resolve(mode, options)
        self.mode = mode
        self.manager = IrPassManager(priority, fusions)
        self.compiles = 0
        self.config_patches()  # a custom pass in the options is checked now

    @property
    def report(self) -> CompileReport:
        return self.manager.report

    def config_patches(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What a compile hands to ``compile_fx``: the options (these, or :attr:`options`) and
        the pass entries, custom passes among the options chained before the IR passes."""
        patches = dict(self.options if options is None else options)
        _add_passes(patches, self.manager.inductor_config())
        return patches

    def __call__(
        self,
        gm: torch.fx.GraphModule,
        example_inputs: list[Any],
        *,
        mode: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Callable[..., Any]:
        """Compile one Dynamo graph. ``mode`` and ``options`` are what ``torch.compile(...,
        backend=this, mode=..., options=...)`` passes on: accepted when the backend has none
        of its own or the same."""
        from torch._inductor.compile_fx import compile_fx

        patches = self.config_patches(self._call_options(mode, options))
        _install_patches()
        self.manager.reset_report()
        self.compiles += 1
        compiled: Any = compile_fx(gm, example_inputs, config_patches=patches)
        return cast(Callable[..., Any], compiled)

    def _call_options(
        self, mode: str | None, options: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        if mode is None and options is None:
            return None
        given = compile_options.resolve(mode, options)
        if self.options and given != self.options:
            raise ValueError(
                f"torch.compile passed Inductor options {given!r} (mode={mode!r}) to a backend "
                f"made with {self.options!r}; give them in one place"
            )
        return given

    def get_compiler_config(self) -> dict[str, Any]:
        """Inductor's config as this backend's compiles see it (a copy; Dynamo's
        ``torch._dynamo.optimize(this)`` exposes it as ``get_compiler_config()`` of what it
        returns)."""
        from torch._inductor.compile_fx import get_patched_config_dict

        config: dict[str, Any] = get_patched_config_dict(config_patches=self.config_patches())
        return config

    def reset(self) -> None:
        """Called by ``torch._dynamo.reset()``: drops the CUDA graph trees when this backend may
        have recorded some (as torch's Inductor backend does)."""
        from torch._inductor import config

        if self.options.get("triton.cudagraphs", config.triton.cudagraphs):
            from torch._inductor.cudagraph_trees import reset_cudagraph_trees

            reset_cudagraph_trees()

    def __repr__(self) -> str:
        return (
            f"ir_compile.backend(priority={self.manager.priority!r}, "
            f"fusions={list(self.manager.fusions)!r}, options={self.options!r})"
        )


def backend(
    priority: PriorityLike = None,
    fusions: Collection[str] | None = None,
    *,
    mode: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> IrCompileBackend:
    """``torch.compile(model, backend=ir_compile.backend())``: Inductor with the IR passes.

    ``priority`` overrides the lowering priority of the ops it names for this backend's
    compiles (an ``IrOpPriorityConfig``, a mapping or the text form
    ``"rms_norm=cuda,native;..."``; op and provider names are checked now). Other ops lower
    with ``op.get_priority(compiling=True)``. ``fusions`` names the fusions to apply
    (:data:`ir_compile.FUSION_NAMES`; ``None``: all, empty: none).

    ``mode`` (``"default"``, ``"reduce-overhead"``, ``"max-autotune"``,
    ``"max-autotune-no-cudagraphs"``: torch's table) or ``options`` (Inductor config entries,
    ``{"triton.cudagraphs": True, "max_autotune": True, ...}``) are those of ``torch.compile``
    and checked now (:mod:`ir_compile.compile_options`): CUDA graphs and autotuning then run with
    the IR passes.
    """
    return IrCompileBackend(priority, fusions, mode=mode, options=options)


def install(
    inductor_config: MutableMapping[str, Any],
    *,
    priority: PriorityLike = None,
    fusions: Collection[str] | None = None,
    mode: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> IrPassManager:
    """Add ir-compile's passes to an Inductor config dict that an engine passes to Inductor
    (``compile_fx(..., config_patches=inductor_config)``); returns the pass manager, whose
    :attr:`~IrPassManager.report` the engine may read and reset.

    Passes already in the dict run first (an engine's own passes see the IR op nodes before they
    are lowered); a plain callable there must be a ``CustomGraphPass`` for the post-grad slot,
    since Inductor cannot key its caches on it. Installing twice replaces the earlier
    ir-compile passes. ``mode`` or ``options`` (as for :func:`backend`) add their Inductor
    entries to the dict too; one that the dict already sets to another value raises
    ``ValueError`` (the engine's setting is not overridden silently) and leaves the dict as it
    was. Also arms the Inductor patches (fallback allow-list, opaque arguments).
    """
    entries = compile_options.resolve(mode, options)
    for key, value in entries.items():
        if key in inductor_config and inductor_config[key] != value:
            raise ValueError(
                f"install(mode={mode!r}, options=...) sets {key}={value!r}, but the Inductor "
                f"config already has {key}={inductor_config[key]!r}"
            )
    manager = IrPassManager(priority, fusions)
    merged = {**inductor_config, **entries}
    _add_passes(merged, manager.inductor_config())
    inductor_config.update(merged)
    _install_patches()
    return manager


def _add_passes(config: MutableMapping[str, Any], entries: Mapping[str, Any]) -> None:
    """Write the pass entries into ``config``, after the custom passes it has (without those of
    an earlier install)."""
    added = dict(entries)
    for key in ("pre_grad_custom_pass", "post_grad_custom_post_pass"):
        existing = _without_ir_compile(config.get(key))
        if existing is None:
            continue
        if key == "post_grad_custom_post_pass" and not isinstance(existing, CustomGraphPass):
            raise TypeError(
                f"the {key!r} entry ({existing!r}) is not a CustomGraphPass: Inductor "
                "cannot key its caches on it; make it a torch._inductor.custom_graph_pass."
                "CustomGraphPass (with a uuid) so ir-compile's passes can run after it"
            )
        added[key] = ChainedPass([*_flatten(existing), added[key]])
    config.update(added)


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
