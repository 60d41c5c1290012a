"""The fallback allow-list patch: proxy semantics, idempotence, lazy install, the fast path."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import Tensor

import ir_compile
from ir_compile.inductor_patches import DEFAULT_PREFIXES, PrefixAllowList, fallback_allow_list
from ir_op.library import get_library
from ir_op.testing import isolated_registry


def test_membership_is_by_prefix_only() -> None:
    original = {"aten::index_add", "torchvision::roi_align"}
    allow = PrefixAllowList(original, DEFAULT_PREFIXES)
    for name in ("ir::rms_norm", "ir_cuda::rms_norm", "ir_rocm::x", "ir_xpu::y", "aten::index_add"):
        assert name in allow, name
    for name in ("my_ir::rms_norm", "xir::y", "aten::add", "ir:rms_norm", "ir_cudax::y", "ir", 5):
        assert name not in allow, name


def test_the_ir_op_namespace_in_use_is_allowed() -> None:
    allow = PrefixAllowList(set(), DEFAULT_PREFIXES)
    with isolated_registry():
        namespace = get_library().ns
        assert f"{namespace}::op" in allow
    assert f"{namespace}::op" not in allow


def test_everything_else_goes_to_the_original() -> None:
    original: set[str] = {"aten::index_add"}
    allow = PrefixAllowList(original, DEFAULT_PREFIXES)
    allow.add("foo::bar")
    assert "foo::bar" in original
    allow.discard("aten::index_add")
    assert original == {"foo::bar"}
    assert list(allow) == ["foo::bar"] and len(allow) == 1
    assert repr(allow) == repr(original)
    allow.update({"baz::qux"})  # any other attribute of the original
    assert original == {"foo::bar", "baz::qux"}
    assert allow.original is original
    assert "ir::anything" not in list(allow)  # prefixes add membership, not elements


def test_prefixes_are_checked() -> None:
    with pytest.raises(ValueError, match="must be an operator namespace followed by '::'"):
        PrefixAllowList(set(), ["ir"])
    with pytest.raises(TypeError, match="collection of strings"):
        PrefixAllowList(set(), "ir::")
    allow = PrefixAllowList(set(), ["ir::"])
    allow.add_prefixes(["ir::", "extra::"])
    assert allow.prefixes == ("ir::", "extra::")


@pytest.fixture
def restored_patch() -> Iterator[None]:
    """Whatever the test does to the patch, the default patch is in place afterwards."""
    import torch._inductor.lowering  # noqa: F401  (the patch applies at once)

    yield
    fallback_allow_list.uninstall()
    ir_compile.inductor_patches.install()


def test_install_is_idempotent_and_rebinds_graphs_copy(restored_patch: None) -> None:
    from torch._inductor import graph, lowering

    proxy = ir_compile.inductor_patches.install()
    assert isinstance(proxy, PrefixAllowList)
    assert ir_compile.inductor_patches.install() is proxy
    assert lowering.FALLBACK_ALLOW_LIST is proxy and graph.FALLBACK_ALLOW_LIST is proxy
    assert not isinstance(proxy.original, PrefixAllowList)  # never wrapped twice
    assert ir_compile.inductor_patches.install(prefixes=["engine::"]) is proxy
    assert "engine::op" in proxy and "ir::op" in proxy

    fallback_allow_list.uninstall()
    assert lowering.FALLBACK_ALLOW_LIST is proxy.original
    assert graph.FALLBACK_ALLOW_LIST is proxy.original
    assert "ir::op" not in lowering.FALLBACK_ALLOW_LIST
    assert ir_compile.inductor_patches.installed() is None


def test_allowed_ops_keep_the_default_layout_constraint() -> None:
    from torch._inductor import lowering
    from torch._library.utils import get_layout_constraint_tag

    with isolated_registry():
        namespace = get_library().ns

        @torch.library.custom_op(f"{namespace}::untagged", mutates_args=())
        def untagged(x: Tensor) -> Tensor:
            return x * 2

        overload = getattr(torch.ops, namespace).untagged.default
        assert overload not in lowering._maybe_layout_constraints
        assert f"{namespace}::untagged" in lowering.FALLBACK_ALLOW_LIST
        expected = lowering.tag_to_layout_constraint(
            get_layout_constraint_tag(overload, with_default=True)
        )
        assert lowering._maybe_layout_constraints.get(overload) is expected


LAZY_INSTALL = """
import importlib.util, sys
import ir_compile
from ir_compile.inductor_patches import fallback_allow_list as patch

assert "torch._inductor.lowering" not in sys.modules, "imported too early"
assert patch.armed()
spec = importlib.util.find_spec("torch._inductor.lowering")  # finds, runs nothing
assert spec is not None and "torch._inductor.lowering" not in sys.modules
assert patch.armed(), "find_spec consumed the patch"
import {first}
from torch._inductor import graph, lowering
assert isinstance(lowering.FALLBACK_ALLOW_LIST, patch.PrefixAllowList)
assert graph.FALLBACK_ALLOW_LIST is lowering.FALLBACK_ALLOW_LIST
assert "ir::rms_norm" in graph.FALLBACK_ALLOW_LIST
assert not patch.armed(), "the finder stays after patching"
assert type(lowering.__loader__).__name__ != "_PatchingLoader"
print("ok")
"""


@pytest.mark.parametrize("first", ["torch._inductor.lowering", "torch._inductor.graph"])
def test_lazy_install_survives_find_spec(first: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LAZY_INSTALL.format(first=first))],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test_allow_listed_ops_skip_the_implicit_fallback_in_a_compile(
    compiling: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One compile, two ops without lowerings: the one in an allowed namespace takes the fast
    path, the other the implicit fallback, which renders its inputs (counted here, with
    Inductor's info log on so that torch versions that defer the text render it too)."""
    from torch._inductor import exc

    rendered: list[str] = []
    original = exc.MissingOperatorWithoutDecomp.operator_str

    def counting(target: Any, args: Any, kwargs: Any) -> str:
        rendered.append(str(target))
        return str(original(target, args, kwargs))

    monkeypatch.setattr(exc.MissingOperatorWithoutDecomp, "operator_str", staticmethod(counting))

    with isolated_registry():
        allowed_namespace = get_library().ns

        @torch.library.custom_op(f"{allowed_namespace}::deep", mutates_args=())
        def allowed(x: Tensor) -> Tensor:
            return x * 2

        allowed.register_fake(torch.empty_like)

        @torch.library.custom_op("ir_compile_test_other::deep", mutates_args=())
        def other(x: Tensor) -> Tensor:
            return x * 3

        other.register_fake(torch.empty_like)

        def model(x: Tensor) -> Tensor:
            for _ in range(4):
                x = torch.sin(x) * 1.5 + 0.25
            return other(allowed(x) + 1) - 1

        x = torch.randn(8)
        with caplog.at_level(logging.INFO, logger="torch._inductor.graph"):
            got = torch.compile(model, backend=ir_compile.backend())(x)
        torch.testing.assert_close(got, model(x))
    assert set(rendered) == {"ir_compile_test_other.deep.default"}  # rendered once per handler
    implicit = [r.getMessage() for r in caplog.records if "implicit fallback" in r.getMessage()]
    assert len(implicit) == 1 and "ir_compile_test_other" in implicit[0]
