"""A decoder-like model whose layers call a custom op by layer name, and compile counters.

Shared by the tests of ir-layername and ir-compile and by the benchmark: it is what proves that
with ``LayerName`` identical layers compile once, and that with plain strings they do not.

- ``DecoderStack(num_layers, plain_strings=...)``: ``num_layers`` identical layers, each a
  ``torch.compiler.nested_compile_region`` whose op looks up per-layer state by the layer's name
  (as attention or a KV-cache update does). ``plain_strings=False`` passes
  ``encode_layer_name(name)`` to ``scale_by_layer`` (an op taking ``LayerNameType``);
  ``plain_strings=True`` passes the ``str`` to ``scale_by_layer_str`` (an op taking ``str``).
- ``compiled_layer_bodies(gm)``: how many layer bodies a graph holds, a shared subgraph counting
  once, inlined layers one each.
- ``AotLayerCounter``: a ``torch.compile`` backend that runs AOTAutograd and records
  ``compiled_layer_bodies`` of each forward graph it compiles.
- ``inductor_layer_lowerings()``: records each layer body that Inductor lowers (compiles), with
  Inductor's and AOTAutograd's caches off (``inductor_caches_off()``) so that every compile
  really happens.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ir_layername.names import LayerNameType, encode_layer_name, resolve_layer_name

NAMESPACE = "ir_layername_testing"

LAYER_SCALES: dict[str, Tensor] = {}
"""Per-layer state the test ops look up by name: layer name -> scale of shape (hidden_size,).

Entries live as long as the ``DecoderStack`` that registered them."""

_stack_ids = itertools.count()


def _scale_for(x: Tensor, layer_name: LayerNameType) -> Tensor:
    """The registered scale of the layer, checked against ``x``'s last dimension.

    Fake kernels call it too, so tracing resolves the fake object of a hoisted ``LayerName``.
    """
    name = resolve_layer_name(layer_name)
    try:
        scale = LAYER_SCALES[name]
    except KeyError:
        known = ", ".join(sorted(LAYER_SCALES)[:4]) or "none"
        raise KeyError(f"no layer named {name!r} is registered (known: {known}, ...)") from None
    if x.shape[-1:] != scale.shape:
        raise ValueError(
            f"layer {name!r} has a scale of shape {tuple(scale.shape)}, which does not fit "
            f"an input of shape {tuple(x.shape)}"
        )
    return scale


@torch.library.custom_op(f"{NAMESPACE}::scale_by_layer", mutates_args=())
def scale_by_layer(x: Tensor, layer_name: LayerNameType) -> Tensor:
    """``x * scale[layer]``: per-layer state found by the layer's name (``LayerNameType``)."""
    return x * _scale_for(x, layer_name)


@scale_by_layer.register_fake
def _scale_by_layer_fake(x: Tensor, layer_name: LayerNameType) -> Tensor:
    _scale_for(x, layer_name)
    return torch.empty_like(x)


@torch.library.custom_op(f"{NAMESPACE}::scale_by_layer_str", mutates_args=())
def scale_by_layer_str(x: Tensor, layer_name: str) -> Tensor:
    """The same op with the layer name as a plain ``str``: baked into graphs as a constant."""
    return x * _scale_for(x, layer_name)


@scale_by_layer_str.register_fake
def _scale_by_layer_str_fake(x: Tensor, layer_name: str) -> Tensor:
    _scale_for(x, layer_name)
    return torch.empty_like(x)


MAX_LAYERS = 512
"""The most layers a ``DecoderStack`` may have (see ``_layer_region``)."""


def _layer_region() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``torch.compiler.nested_compile_region``, with room to retrace every layer.

    Where torch checks guards before reusing a traced region (it has ``max_reuse_entries``),
    a value read inside the region and guarded by equality (a layer name, hoisted or not) fails
    that check on every layer, so each layer is traced again; the traced graphs are then
    compared, and identical ones share one subgraph. The limit must exceed the layer count.
    """
    region: Callable[..., Any] = torch.compiler.nested_compile_region
    if "max_reuse_entries" in inspect.signature(region).parameters:
        with_room: Callable[[Callable[..., Any]], Callable[..., Any]] = region(
            max_reuse_entries=MAX_LAYERS
        )
        return with_room
    return region


class DecoderLayer(nn.Module):
    """``x + silu(scale_by_layer(proj(x), name))``: one layer, compiled as its own region."""

    def __init__(
        self, hidden_size: int, layer_name: str, *, plain_strings: bool, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_size, hidden_size)
        with torch.no_grad():
            self.proj.weight.copy_(
                torch.randn(hidden_size, hidden_size, generator=generator) / hidden_size**0.5
            )
            self.proj.bias.copy_(torch.randn(hidden_size, generator=generator))
        self.requires_grad_(False)
        self.register_buffer("scale", torch.rand(hidden_size, generator=generator) + 0.5)
        self.plain_strings = plain_strings
        self.layer_name: LayerNameType = (
            layer_name if plain_strings else encode_layer_name(layer_name)
        )

    @_layer_region()
    def forward(self, x: Tensor) -> Tensor:
        h = self.proj(x)
        if self.plain_strings:
            h = scale_by_layer_str(h, self.layer_name)
        else:
            h = scale_by_layer(h, self.layer_name)
        return x + torch.nn.functional.silu(h)


class DecoderStack(nn.Module):
    """``num_layers`` identical ``DecoderLayer`` s (inference only: no parameter needs grad).

    Layer names are ``"stack<k>.layers.<i>.attn"``, unique per stack, and registered in
    ``LAYER_SCALES`` until the stack is garbage-collected. Weights come from ``seed``.
    """

    def __init__(
        self, num_layers: int, *, hidden_size: int = 32, plain_strings: bool, seed: int = 0
    ) -> None:
        super().__init__()
        if not 1 <= num_layers <= MAX_LAYERS:
            raise ValueError(f"num_layers must be in [1, {MAX_LAYERS}], got {num_layers}")
        generator = torch.Generator().manual_seed(seed)
        prefix = f"stack{next(_stack_ids)}"
        self.layer_names = [f"{prefix}.layers.{i}.attn" for i in range(num_layers)]
        self.layers = nn.ModuleList(
            DecoderLayer(hidden_size, name, plain_strings=plain_strings, generator=generator)
            for name in self.layer_names
        )
        for name, layer in zip(self.layer_names, self.layers, strict=True):
            LAYER_SCALES[name] = layer.get_buffer("scale")
        weakref.finalize(self, _forget_layers, tuple(self.layer_names))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def _forget_layers(names: tuple[str, ...]) -> None:
    for name in names:
        LAYER_SCALES.pop(name, None)


LAYER_OPS: tuple[Any, ...] = (
    torch.ops.ir_layername_testing.scale_by_layer.default,
    torch.ops.ir_layername_testing.scale_by_layer_str.default,
)
"""The ops each ``DecoderLayer`` calls once: counting their compiled calls counts layer bodies."""


def compiled_layer_bodies(gm: torch.fx.GraphModule, ops: tuple[Any, ...] = LAYER_OPS) -> int:
    """How many layer bodies the graph ``gm`` holds: calls to ``ops`` in ``gm`` itself, plus
    those in each distinct subgraph that its ``invoke_subgraph`` calls run, each counted once.

    A layer compiled as a shared subgraph counts once however many layers call it; layers
    inlined into ``gm`` (torch inlines subgraphs that are called only once) count one each.
    """
    invoke_subgraph = torch.ops.higher_order.invoke_subgraph
    bodies = 0
    subgraphs: dict[str, torch.fx.GraphModule] = {}
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        if node.target in ops:
            bodies += 1
        elif node.target is invoke_subgraph:
            target = node.args[0].target if isinstance(node.args[0], torch.fx.Node) else None
            submodule = getattr(gm, target, None) if isinstance(target, str) else None
            if isinstance(submodule, torch.fx.GraphModule):
                subgraphs[target] = submodule  # type: ignore[index]
    return bodies + sum(compiled_layer_bodies(sub, ops) for sub in subgraphs.values())


class AotLayerCounter:
    """A ``torch.compile`` backend: AOTAutograd, then the traced forward runs as is.

    ``layer_bodies`` lists, per forward graph compiled, ``compiled_layer_bodies`` of it: the
    number of distinct layer bodies that AOTAutograd traced and a compiler would compile.
    """

    def __init__(self, ops: tuple[Any, ...] = LAYER_OPS) -> None:
        self.ops = ops
        self.layer_bodies: list[int] = []

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        from torch._dynamo.backends.common import aot_autograd

        backend = aot_autograd(fw_compiler=self._forward_compiler)
        compiled: Callable[..., Any] = backend(gm, example_inputs)
        return compiled

    def _forward_compiler(
        self, gm: torch.fx.GraphModule, example_inputs: list[Any]
    ) -> Callable[..., Any]:
        from torch._functorch._aot_autograd.utils import make_boxed_func

        self.layer_bodies.append(compiled_layer_bodies(gm, self.ops))
        boxed: Callable[..., Any] = make_boxed_func(gm.forward)
        return boxed


@contextlib.contextmanager
def inductor_caches_off() -> Iterator[None]:
    """Inductor's FX-graph cache and AOTAutograd's cache off inside the block.

    A cache hit (from an earlier test, or an earlier run on this machine) compiles nothing, so
    whatever a test means to observe about compiling would not happen.
    """
    from torch._functorch import config as functorch_config
    from torch._inductor import config as inductor_config

    with (
        inductor_config.patch(fx_graph_cache=False),
        functorch_config.patch(enable_autograd_cache=False),
    ):
        yield


@contextlib.contextmanager
def inductor_layer_lowerings(ops: tuple[Any, ...] = LAYER_OPS) -> Iterator[list[str]]:
    """Record each call of ``ops`` that Inductor lowers inside the ``with`` block.

    Inductor lowers the nodes of every graph it compiles, and each distinct subgraph once, so
    the list's length is the number of layer bodies it compiled. Each entry names the graph the
    call was lowered in. The FX-graph and AOTAutograd caches are off inside the block: a cache
    hit would compile nothing.
    """
    from torch._inductor.graph import GraphLowering

    lowered: list[str] = []
    original = GraphLowering.run_node

    @functools.wraps(original)
    def recording(self: GraphLowering, n: torch.fx.Node) -> Any:
        if n.op == "call_function" and n.target in ops:
            lowered.append(str(getattr(self, "name", None) or "main"))
        return original(self, n)

    with inductor_caches_off():
        GraphLowering.run_node = recording  # type: ignore[method-assign]
        try:
            yield lowered
        finally:
            GraphLowering.run_node = original  # type: ignore[method-assign]
