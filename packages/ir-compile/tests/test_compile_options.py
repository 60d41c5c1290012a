"""``ir_compile.backend(mode=..., options=...)``: checked as torch.compile checks them, applied to
the compile only, with the IR passes still running (CPU Inductor)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor
from torch._inductor import config as inductor_config
from torch._inductor import list_mode_options
from torch._inductor.custom_graph_pass import CustomGraphPass

import ir_compile
from ir_compile import compile_options
from ir_compile.fx_utils import ir_calls
from ir_compile.pass_manager import ChainedPass, IrPassManager
from ir_op import ops

WATCHED = ("triton.cudagraphs", "max_autotune", "coordinate_descent_tuning", "max_fusion_size")


def current(key: str) -> Any:
    value: Any = inductor_config
    for part in key.split("."):
        value = getattr(value, part)
    return value


class ConfigProbe(CustomGraphPass):
    """A post-grad pass recording the watched Inductor options and the IR op nodes it sees."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.ir_nodes: list[int] = []

    def __call__(self, graph: torch.fx.Graph) -> None:
        self.seen.append({key: current(key) for key in WATCHED})
        self.ir_nodes.append(len(ir_calls(graph)))

    def uuid(self) -> Any:
        return "config-probe"


def model(x: Tensor, w: Tensor) -> Tensor:
    out: Tensor = ops.rms_norm(x * 2, w, 1e-6) + 1
    return out


def inputs() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 32, generator=g), torch.rand(32, generator=g) + 0.5


def global_config() -> dict[str, Any]:
    return {key: current(key) for key in (*WATCHED, "post_grad_custom_post_pass")}


# -- checking ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"])
def test_modes_are_torchs_table(mode: str) -> None:
    assert mode in compile_options.valid_modes()
    backend = ir_compile.backend(mode=mode)
    assert backend.options == list_mode_options(mode)
    assert backend.options.get("triton.cudagraphs", False) == (mode != "max-autotune-no-cudagraphs")


def test_default_mode_and_none_add_nothing() -> None:
    assert ir_compile.backend().options == {}
    assert ir_compile.backend(mode="default").options == {}


def test_an_unknown_mode_names_the_valid_ones() -> None:
    before = global_config()
    with pytest.raises(ValueError, match="'reduce-overhead'") as raised:
        ir_compile.backend(mode="reduce_overhead")
    assert "did you mean 'reduce-overhead'" in str(raised.value)
    assert "'max-autotune'" in str(raised.value)
    with pytest.raises(TypeError, match="mode must be a str"):
        ir_compile.backend(mode=1)  # type: ignore[arg-type]
    assert global_config() == before


def test_a_mode_that_skips_the_post_grad_passes_is_refused() -> None:
    off = [m for m, o in list_mode_options().items() if o.get("use_post_grad_passes") is False]
    if not off:
        pytest.skip("this torch has no mode that turns the post-grad passes off")
    assert off[0] not in compile_options.valid_modes()
    with pytest.raises(ValueError, match="use_p(re|ost)_grad_passes=False, which skips"):
        ir_compile.backend(mode=off[0])


def test_mode_and_options_together_are_refused_as_by_torch_compile() -> None:
    with pytest.raises(ValueError, match="not both") as raised:
        ir_compile.backend(mode="reduce-overhead", options={"max_autotune": True})
    assert "'triton.cudagraphs': True" in str(raised.value)


def test_options_are_checked() -> None:
    before = global_config()
    with pytest.raises(ValueError, match="'max_autotun' is not an Inductor option") as raised:
        ir_compile.backend(options={"max_autotun": True})
    assert "close matches: max_autotune" in str(raised.value)
    with pytest.raises(ValueError, match="'triton.cudagraph' is not an Inductor option.*"):
        ir_compile.backend(options={"triton.cudagraph": True})
    with pytest.raises(TypeError, match=r"options\['max_autotune'\] must be a bool, got 'yes'"):
        ir_compile.backend(options={"max_autotune": "yes"})
    with pytest.raises(TypeError, match="options must be a mapping"):
        ir_compile.backend(options=[("max_autotune", True)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keys must be Inductor option names"):
        ir_compile.backend(options={1: True})  # type: ignore[dict-item]
    assert global_config() == before


def test_option_names_take_dashes_as_torch_does() -> None:
    backend = ir_compile.backend(options={"max-autotune": True, "triton.cudagraphs": False})
    assert backend.options == {"max_autotune": True, "triton.cudagraphs": False}


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"use_post_grad_passes": False}, "post-grad passes, where the IR passes run"),
        ({"use_pre_grad_passes": False}, "pre-grad passes, where the IR passes run"),
    ],
)
def test_options_that_would_skip_the_ir_passes_are_refused(
    options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        ir_compile.backend(options=options)


def test_a_pre_grad_pass_timing_the_passes_cannot_work_with_is_refused() -> None:
    if not hasattr(inductor_config, "pre_grad_pass_timing"):
        pytest.skip("this torch has no pre_grad_pass_timing")
    with pytest.raises(ValueError, match="need 'early'"):
        ir_compile.backend(options={"pre_grad_pass_timing": "late"})
    assert ir_compile.backend(options={"pre_grad_pass_timing": "early"}).options


def test_a_custom_post_grad_pass_in_the_options_runs_before_the_ir_passes() -> None:
    probe = ConfigProbe()
    backend = ir_compile.backend(options={"post_grad_custom_post_pass": probe})
    chained = backend.config_patches()["post_grad_custom_post_pass"]
    assert isinstance(chained, ChainedPass) and chained.passes == [probe, backend.manager]

    def plain(graph: torch.fx.Graph) -> None:
        pass

    with pytest.raises(TypeError, match="not a CustomGraphPass"):
        ir_compile.backend(options={"post_grad_custom_post_pass": plain})


# -- compiling --------------------------------------------------------------------------------


def test_a_mode_reaches_inductor_for_the_compile_only(compiling: None) -> None:
    before = global_config()
    probe = ConfigProbe()
    backend = ir_compile.backend(mode="reduce-overhead")
    x, w = inputs()
    with inductor_config.patch(post_grad_custom_pre_pass=probe):  # to watch the config only
        got = torch.compile(model, backend=backend, fullgraph=True)(x, w)
    torch.testing.assert_close(got, model(x, w))
    assert probe.seen and all(seen["triton.cudagraphs"] is True for seen in probe.seen)
    assert backend.report.providers_of("rms_norm")  # the IR passes lowered the node
    assert global_config() == before


def test_autotuning_options_and_a_custom_pass_reach_inductor(compiling: None) -> None:
    before = global_config()
    probe = ConfigProbe()
    backend = ir_compile.backend(
        options={
            "coordinate_descent_tuning": True,
            "max_fusion_size": 7,
            "post_grad_custom_post_pass": probe,
        }
    )
    x, w = inputs()
    torch.testing.assert_close(torch.compile(model, backend=backend)(x, w), model(x, w))
    assert probe.seen[-1]["coordinate_descent_tuning"] is True
    assert probe.seen[-1]["max_fusion_size"] == 7
    assert probe.ir_nodes[-1] == 1  # ran before the lowering, on the IR op node
    assert backend.report.providers_of("rms_norm")
    assert global_config() == before


def test_torch_compile_mode_is_passed_to_the_backend(compiling: None) -> None:
    probe = ConfigProbe()
    backend = ir_compile.backend(options={"post_grad_custom_pre_pass": probe})
    x, w = inputs()
    with pytest.raises(Exception, match="give them in one place"):
        torch.compile(model, backend=backend, mode="reduce-overhead")(x, w)

    torch._dynamo.reset()
    plain = ir_compile.backend()
    compiled = torch.compile(model, backend=plain, mode="max-autotune-no-cudagraphs")
    with inductor_config.patch(post_grad_custom_pre_pass=probe):  # to watch the config only
        torch.testing.assert_close(compiled(x, w), model(x, w))
    assert probe.seen[-1]["max_autotune"] is True
    assert probe.seen[-1]["coordinate_descent_tuning"] is True
    assert probe.seen[-1]["triton.cudagraphs"] is False
    assert plain.compiles == 1 and plain.report.providers_of("rms_norm")
    assert inductor_config.max_autotune is False


def test_install_adds_the_options_to_an_engines_config() -> None:
    config: dict[str, Any] = {"max_fusion_size": 3}
    manager = ir_compile.install(config, mode="reduce-overhead")
    assert config["triton.cudagraphs"] is True and config["max_fusion_size"] == 3
    assert config["post_grad_custom_post_pass"] is manager

    engine: dict[str, Any] = {"triton.cudagraphs": False}
    with pytest.raises(ValueError, match="already has triton.cudagraphs=False"):
        ir_compile.install(engine, mode="reduce-overhead")
    assert engine == {"triton.cudagraphs": False}


def test_the_compiler_config_shows_the_options_and_the_passes() -> None:
    backend = ir_compile.backend(mode="reduce-overhead")
    config = backend.get_compiler_config()
    assert config["triton.cudagraphs"] is True
    assert isinstance(config["post_grad_custom_post_pass"], IrPassManager)  # a copy
    assert inductor_config.triton.cudagraphs is False
