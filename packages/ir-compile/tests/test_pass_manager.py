"""IrPassManager: the pipeline, its report, its cache key, and installing it into a config."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import Tensor
from torch._inductor.custom_graph_pass import CustomGraphPass

import ir_compile
from ir_compile.fx_utils import ir_calls
from ir_compile.pass_manager import ChainedPass, IrPassManager
from ir_compile.priorities import CompilePriorities
from ir_compile.testing import ir_graph, run_graph
from ir_op import IrOp, ops, register_op
from ir_op.testing import assert_outputs_close, preserved_priorities


def test_the_pipeline_fuses_lowers_and_reports() -> None:
    g = torch.Generator().manual_seed(0)
    x, r = torch.randn(4, 32, generator=g), torch.randn(4, 32, generator=g)
    w, scale = torch.rand(32, generator=g) + 0.5, torch.tensor([0.01])

    def model(x: Tensor, r: Tensor, w: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        h = x + r
        return ops.static_scaled_fp8_quant(ops.rms_norm(h, w, 1e-6), scale), h

    gm = ir_graph(model, x, r, w, scale)
    manager = IrPassManager(priority="fused_add_rms_norm_static_fp8_quant=unfused")
    manager(gm.graph)
    report = manager.report
    assert report.fusions == {
        "add_rms_norm": 1,
        "fused_add_rms_norm_quant": 1,
        "rms_norm_quant": 0,
        "silu_and_mul_quant": 0,
    }
    assert report.providers_of("fused_add_rms_norm_static_fp8_quant") == {"unfused"}
    assert set(report.selected) == {
        "fused_add_rms_norm_static_fp8_quant",
        "fused_add_rms_norm",
        "static_scaled_fp8_quant",
    }
    assert report.traces == 3 and report.not_lowered == {}
    assert ir_calls(gm.graph) == []
    got = run_graph(gm, x, r, w, scale)
    for a, b in zip(got, model(x, r, w, scale), strict=True):
        assert_outputs_close(ops.fused_add_rms_norm_static_fp8_quant, a, b)
    assert manager.reset_report().selected == {}


def test_fusions_can_be_switched_off() -> None:
    x, w, scale = torch.randn(4, 32), torch.rand(32) + 0.5, torch.tensor([0.01])
    gm = ir_graph(
        lambda x, w, s: ops.static_scaled_fp8_quant(ops.rms_norm(x, w, 1e-6), s), x, w, scale
    )
    manager = IrPassManager(fusions=())
    manager(gm.graph)
    assert manager.report.fusions == {}
    assert set(manager.report.selected) == {"rms_norm", "static_scaled_fp8_quant"}


# ---------------------------------------------------------------------------------------------
# uuid


def test_uuid_is_stable_and_follows_the_configuration() -> None:
    base = IrPassManager().uuid()
    assert base == IrPassManager().uuid()
    assert base == IrPassManager(fusions=list(reversed(ir_compile.FUSION_NAMES))).uuid()
    others = [
        IrPassManager(fusions=["add_rms_norm"]).uuid(),
        IrPassManager(priority="rms_norm=native").uuid(),
        IrPassManager(priority={"rms_norm_static_fp8_quant": ["unfused"]}).uuid(),
        IrPassManager(trace_cache=True, eliminate_clones=False).uuid(),
    ]
    assert len({base, *others}) == 5


def test_uuid_follows_priorities_set_on_ops() -> None:
    op = ops.rms_norm_static_fp8_quant
    other = ["unfused"] if CompilePriorities().providers(op) == ["native"] else ["native"]
    before = IrPassManager().uuid()
    with preserved_priorities():
        op.set_default(other)
        changed = IrPassManager().uuid()
    assert changed != before
    assert IrPassManager().uuid() == before


PROVIDER_SOURCE = """
from torch import Tensor


def halve(x: Tensor) -> Tensor:
    return x * 0.5
"""


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def test_uuid_follows_the_source_of_implementations_it_may_select(
    isolated: dict[str, IrOp], tmp_path: Path
) -> None:
    @register_op
    def halve(x: Tensor) -> Tensor:
        return x / 2

    listed, unlisted = tmp_path / "listed_provider.py", tmp_path / "unlisted_provider.py"
    for path in (listed, unlisted):
        path.write_text(PROVIDER_SOURCE)
    halve.register_impl("listed")(load_module(listed, "ir_compile_test_listed").halve)
    halve.register_impl("unlisted")(load_module(unlisted, "ir_compile_test_unlisted").halve)
    manager = IrPassManager()
    with halve.set_priority(["listed", "native"]):  # restored: the files do not outlive the test
        first = manager.uuid()
        unlisted.write_text(PROVIDER_SOURCE + "# edited\n")
        assert manager.uuid() == first  # never selected under this priority
        listed.write_text(PROVIDER_SOURCE + "# edited\n")
        assert manager.uuid() != first


def test_no_uuid_when_an_implementation_has_no_source(isolated: dict[str, IrOp]) -> None:
    @register_op
    def negate(x: Tensor) -> Tensor:
        return -x

    namespace: dict[str, Any] = {"Tensor": Tensor}
    exec("def negate_generated(x: Tensor) -> Tensor:\n    return x.neg()\n", namespace)
    negate.register_impl("generated")(namespace["negate_generated"])
    manager = IrPassManager()
    assert manager.uuid()
    with negate.set_priority(["generated", "native"]):
        assert manager.uuid() is None  # Inductor then bypasses its caches
    assert manager.uuid()


def test_no_uuid_for_a_compile_that_donates_graph_inputs() -> None:
    manager = IrPassManager()
    assert manager.uuid()
    manager.inplace.donated_inputs = ["l_x_"]
    assert manager.uuid() is None
    manager.inplace.donated_inputs = []
    assert manager.uuid()


# ---------------------------------------------------------------------------------------------
# Installing


class EnginePass(CustomGraphPass):
    def __init__(self, uuid: str | None = "engine-pass") -> None:
        self._uuid = uuid
        self.calls = 0

    def __call__(self, graph: torch.fx.Graph) -> None:
        self.calls += 1

    def uuid(self) -> Any:
        return self._uuid


def test_inductor_config_entries() -> None:
    from torch._inductor import config

    manager = IrPassManager()
    entries = manager.inductor_config()
    assert entries["post_grad_custom_post_pass"] is manager
    assert entries["pre_grad_custom_pass"] is manager.inplace
    assert ("pre_grad_pass_timing" in entries) == hasattr(config, "pre_grad_pass_timing")


def test_install_into_an_empty_config_and_again() -> None:
    config: dict[str, Any] = {"max_autotune": False}
    manager = ir_compile.install(config, fusions=["rms_norm_quant"])
    assert config["post_grad_custom_post_pass"] is manager
    assert config["pre_grad_custom_pass"] is manager.inplace
    assert config["max_autotune"] is False
    assert manager.fusions == ("rms_norm_quant",)
    again = ir_compile.install(config)
    assert config["post_grad_custom_post_pass"] is again  # replaced, not chained twice


def test_install_runs_an_engines_passes_first() -> None:
    engine_post, engine_pre = EnginePass(), EnginePass()
    config: dict[str, Any] = {
        "post_grad_custom_post_pass": engine_post,
        "pre_grad_custom_pass": engine_pre,
    }
    manager = ir_compile.install(config)
    chained = config["post_grad_custom_post_pass"]
    assert isinstance(chained, ChainedPass) and chained.passes == [engine_post, manager]
    assert config["pre_grad_custom_pass"].passes == [engine_pre, manager.inplace]
    graph = ir_graph(ops.silu_and_mul, torch.randn(2, 8)).graph
    chained(graph)
    assert engine_post.calls == 1 and manager.report.selected
    assert chained.uuid() and chained.uuid() != manager.uuid()
    reinstalled = ir_compile.install(config)
    assert config["post_grad_custom_post_pass"].passes == [engine_post, reinstalled]


def test_install_refuses_a_post_grad_pass_without_a_cache_key() -> None:
    def plain(graph: torch.fx.Graph) -> None:
        pass

    config: dict[str, Any] = {"post_grad_custom_post_pass": plain}
    with pytest.raises(TypeError, match="not a CustomGraphPass"):
        ir_compile.install(config)
    assert config == {"post_grad_custom_post_pass": plain}


def test_a_chain_without_every_uuid_has_none() -> None:
    assert ChainedPass([EnginePass(None), IrPassManager()]).uuid() is None
