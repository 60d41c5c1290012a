"""Helpers for testing graph passes over IR ops (ir-compile's own, or an engine's).

- :func:`ir_graph`: a graph like the post-grad graphs the passes see (IR op nodes, fake values in
  ``node.meta["val"]``), without compiling anything: ``make_fx`` of a function with torch wrap on.
- :func:`run_graph`: run such a graph on real tensors after passes changed it.
- :func:`inductor_caches_off`: Inductor's FX-graph and AOTAutograd caches off, so that a compile
  really runs the passes (on a cache hit nothing is lowered and the report stays empty).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ir_op import enable_torch_wrap


def ir_graph(fn: Callable[..., Any], *args: Any, dynamic: bool = False) -> torch.fx.GraphModule:
    """``fn`` traced on fake copies of ``args`` with torch wrap on (IR ops stay single nodes).

    With ``dynamic`` the sizes are symbolic, as in a ``torch.compile(dynamic=True)`` graph.
    """
    from torch.fx.experimental.proxy_tensor import make_fx

    with enable_torch_wrap(True):
        graph_module: torch.fx.GraphModule = make_fx(
            fn, tracing_mode="symbolic" if dynamic else "fake"
        )(*args)
    return graph_module


def run_graph(graph_module: torch.fx.GraphModule, *args: Any) -> Any:
    """Regenerate ``graph_module``'s code from its (changed) graph and run it on ``args``."""
    graph_module.graph.lint()  # type: ignore[no-untyped-call,unused-ignore]
    graph_module.recompile()
    return graph_module(*args)


@contextlib.contextmanager
def inductor_caches_off() -> Iterator[None]:
    """Inductor's FX-graph cache and AOTAutograd's cache off inside the block."""
    from torch._functorch import config as functorch_config
    from torch._inductor import config as inductor_config

    with (
        inductor_config.patch(fx_graph_cache=False),
        functorch_config.patch(enable_autograd_cache=False),
    ):
        yield
