"""register_impl and IrOpImpl: validation, support checks, uuid."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, IrOpImpl, register_op


def scale(x: Tensor, factor: float, bias: Tensor | None = None) -> Tensor:
    out = x * factor
    return out if bias is None else out + bias


def scale_fast(x: Tensor, factor: float, bias: Tensor | None = None) -> Tensor:
    out = torch.mul(x, factor)
    return out if bias is None else out + bias


def only_floats(x: Tensor, factor: float, bias: Tensor | None = None) -> bool:
    return x.dtype == torch.float32


@pytest.fixture
def op(isolated: dict[str, IrOp]) -> IrOp:
    return register_op(scale)


def test_register_impl_returns_impl(op: IrOp) -> None:
    impl = op.register_impl("fast", supports_args=only_floats)(scale_fast)
    assert isinstance(impl, IrOpImpl)
    assert op.impls["fast"] is impl
    assert (impl.op, impl.provider, impl.impl_fn) == (op, "fast", scale_fast)
    assert impl.supported and impl.unsupported_reason is None
    assert not impl.inplace and not impl.supports_all_args
    assert impl.supports_args(torch.randn(2), 1.0)
    assert not impl.supports_args(torch.randn(2, dtype=torch.float64), 1.0)
    assert repr(impl) == "IrOpImpl('scale', 'fast')"
    native = op.impls["native"]
    assert native.supports_all_args and native.supported and native.impl_fn is scale


@pytest.mark.parametrize("provider", ["native", "unfused"])
def test_reserved_providers(op: IrOp, provider: str) -> None:
    with pytest.raises(ValueError, match=f"provider name '{provider}' is reserved"):
        op.register_impl(provider)
    assert set(op.impls) == {"native"}


@pytest.mark.parametrize("provider", ["Fast", "fast-1", "", "9fast"])
def test_invalid_provider_names(op: IrOp, provider: str) -> None:
    with pytest.raises(ValueError, match="provider name .* is invalid"):
        op.register_impl(provider)


def test_duplicate_provider(op: IrOp) -> None:
    first = op.register_impl("fast")(scale_fast)
    with pytest.raises(ValueError, match="provider 'fast' is already registered"):
        op.register_impl("fast")(scale_fast)
    assert op.impls["fast"] is first


def test_schema_mismatch_names_both_schemas(op: IrOp) -> None:
    def wrong(x: Tensor, factor: int, bias: Tensor | None = None) -> Tensor:
        return x * factor

    with pytest.raises(
        ValueError, match=r"schema '\(Tensor x, SymInt factor.*does not match the native schema"
    ):
        op.register_impl("wrong")(wrong)

    def wrong_default(x: Tensor, factor: float, bias: Tensor | None = 1) -> Tensor:  # type: ignore[assignment]
        return x * factor

    with pytest.raises(ValueError, match="does not match the native schema"):
        op.register_impl("wrong")(wrong_default)
    assert set(op.impls) == {"native"}


def test_impl_with_keyword_only_parameter(op: IrOp) -> None:
    def kw(x: Tensor, factor: float, *, bias: Tensor | None = None) -> Tensor:
        return x

    with pytest.raises(ValueError, match="'bias' is keyword-only"):
        op.register_impl("kw")(kw)
    assert set(op.impls) == {"native"}


def test_supports_args_must_be_callable(op: IrOp) -> None:
    with pytest.raises(ValueError, match="supports_args must be callable"):
        op.register_impl("fast", supports_args=True)  # type: ignore[arg-type]


def test_supports_args_must_match_native_parameters(op: IrOp) -> None:
    def too_few(x: Tensor, factor: float) -> bool:
        return True

    def renamed(x: Tensor, scale: float, bias: Tensor | None = None) -> bool:
        return True

    def other_default(x: Tensor, factor: float, bias: Tensor | None = 0) -> bool:  # type: ignore[assignment]
        return True

    def keyword_only(x: Tensor, factor: float, *, bias: Tensor | None = None) -> bool:
        return True

    with pytest.raises(
        ValueError, match=r"takes 2 parameters \(\['x', 'factor'\]\), the native function 3"
    ):
        op.register_impl("fast", supports_args=too_few)
    with pytest.raises(
        ValueError, match="names parameter 'scale' where the native function has 'factor'"
    ):
        op.register_impl("fast", supports_args=renamed)
    with pytest.raises(
        ValueError, match="gives parameter 'bias' default 0; the native function has default None"
    ):
        op.register_impl("fast", supports_args=other_default)
    with pytest.raises(ValueError, match="keyword-only parameter 'bias'"):
        op.register_impl("fast", supports_args=keyword_only)
    assert set(op.impls) == {"native"}


def test_supports_args_must_return_a_bool(op: IrOp) -> None:
    def tensor_result(x: Tensor, factor: float, bias: Tensor | None = None) -> bool:
        return x.sum() > 0  # type: ignore[return-value]

    impl = op.register_impl("fast", supports_args=tensor_result)(scale_fast)
    with pytest.raises(TypeError, match="must return a Python bool"):
        impl.supports_args(torch.ones(2), 1.0)
    with (
        op.set_priority(["fast", "native"]),
        pytest.raises(TypeError, match="must return a Python bool"),
    ):
        op.dispatch(torch.ones(2), 1.0)


def test_inplace_needs_allow_inplace(op: IrOp) -> None:
    with pytest.raises(
        ValueError, match="inplace=True needs an op registered with allow_inplace=True"
    ):
        op.register_impl("fast", inplace=True)


def test_supported_false_with_reason(op: IrOp) -> None:
    impl = op.register_impl("gpu", supported=False, unsupported_reason="no GPU here")(scale_fast)
    assert not impl.supported
    assert impl.unsupported_reason == "no GPU here"
    assert op.supported_providers() == ["native"]
    impl2 = op.register_impl("gpu2", supported=False)(scale_fast)
    assert impl2.unsupported_reason == "registered with supported=False"


def test_supported_callable_is_evaluated_once_and_lazily(op: IrOp) -> None:
    calls = []

    def probe() -> bool:
        calls.append(1)
        return True

    impl = op.register_impl("lazy", supported=probe)(scale_fast)
    assert calls == []
    assert impl.supported and impl.supported
    assert impl.unsupported_reason is None
    assert calls == [1]


def test_supported_callable_that_raises_records_the_reason(op: IrOp) -> None:
    def probe() -> bool:
        raise ImportError("libfoo.so not found")

    impl = op.register_impl("broken", supported=probe)(scale_fast)
    assert not impl.supported
    assert impl.unsupported_reason == "support check raised ImportError: libfoo.so not found"


def test_supported_must_be_bool_or_callable(op: IrOp) -> None:
    with pytest.raises(TypeError, match="supported must be a bool or a callable"):
        op.register_impl("x", supported="yes")  # type: ignore[arg-type]


IMPL_SOURCE = """
import torch
from torch import Tensor


def scale_from_file(x: Tensor, factor: float, bias: Tensor | None = None) -> Tensor:
    return x * factor{extra}
"""


def _load_module(path: Path, name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_uuid_follows_the_source_file(op: IrOp, tmp_path: Path) -> None:
    path = tmp_path / "ir_test_impl_file.py"
    original = IMPL_SOURCE.format(extra="")
    path.write_text(original)
    module = _load_module(path, "ir_test_impl_file")
    impl = op.register_impl("from_file")(module.scale_from_file)  # type: ignore[attr-defined]
    first = impl.uuid()
    assert len(first) == 64 and first == impl.uuid()

    path.write_text(IMPL_SOURCE.format(extra="  # edited"))
    edited = impl.uuid()
    assert edited != first

    path.write_text(original)
    assert impl.uuid() == first
    assert op.impls["native"].uuid() != first


def test_unsupported_reason_may_be_computed(op: IrOp) -> None:
    asked: list[int] = []

    def why() -> str:
        asked.append(1)
        return "platform is rocm, not cuda"

    impl = op.register_impl("gpu", supported=lambda: False, unsupported_reason=why)(scale_fast)
    assert asked == []  # evaluated when needed, once
    assert not impl.supported
    assert impl.unsupported_reason == "platform is rocm, not cuda"
    assert impl.unsupported_reason == "platform is rocm, not cuda" and asked == [1]
    ok = op.register_impl("ok", supported=True, unsupported_reason=why)(scale_fast)
    assert ok.supported and ok.unsupported_reason is None and asked == [1]


def test_unsupported_reason_callable_that_raises_or_says_nothing(op: IrOp) -> None:
    def broken() -> str:
        raise OSError("no /proc")

    impl = op.register_impl("a", supported=False, unsupported_reason=broken)(scale_fast)
    assert impl.unsupported_reason == "the unsupported_reason callable raised OSError: no /proc"
    silent = op.register_impl("b", supported=False, unsupported_reason=lambda: None)(scale_fast)
    assert silent.unsupported_reason == "registered with supported=False"


def test_unsupported_reason_type(op: IrOp) -> None:
    with pytest.raises(TypeError, match="unsupported_reason must be a string or a callable"):
        op.register_impl("c", supported=False, unsupported_reason=3)  # type: ignore[arg-type]
