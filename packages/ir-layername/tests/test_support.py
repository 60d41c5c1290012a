"""Registration route detection: by feature, with fake torch modules for every case."""

from __future__ import annotations

import inspect
import logging
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch

import ir_layername
from ir_layername.support import (
    CUSTOM_CLASS_BASE_MODULE,
    OPAQUE_BASE_MODULE,
    OPAQUE_OBJECT_MODULE,
    OpaqueSupport,
    detect_opaque_support,
    import_if_present,
    register_hoisted,
)


class CustomClassBase:
    pass


class OpaqueBase:
    pass


def register_with_hoist(cls: Any, *, typ: str, hoist: bool = False) -> None:
    pass


def register_without_hoist(cls: Any, *, typ: str) -> None:
    pass


def finder(**modules: object) -> tuple[Any, list[str]]:
    """A find_module over fake modules, and the list of names it was asked for."""
    asked: list[str] = []

    def find(name: str) -> ModuleType | None:
        asked.append(name)
        module = modules.get(name)
        if isinstance(module, BaseException):
            raise module
        return module  # type: ignore[return-value]

    return find, asked


def test_custom_class_route_never_touches_the_deprecated_names() -> None:
    opaque = SimpleNamespace(
        register_custom_class=register_with_hoist, register_opaque_type=register_with_hoist
    )
    base = SimpleNamespace(CustomClassBase=CustomClassBase)
    find, asked = finder(
        **{OPAQUE_OBJECT_MODULE: opaque, CUSTOM_CLASS_BASE_MODULE: base},
        **{OPAQUE_BASE_MODULE: SimpleNamespace(OpaqueBase=OpaqueBase)},
    )
    support = detect_opaque_support(find)
    assert support.route == "register_custom_class"
    assert support.register is register_with_hoist
    assert support.typ == "constant"
    assert support.base is CustomClassBase
    assert OPAQUE_BASE_MODULE not in asked


def test_opaque_type_route_with_hoist_and_base() -> None:
    find, _ = finder(
        **{
            OPAQUE_OBJECT_MODULE: SimpleNamespace(register_opaque_type=register_with_hoist),
            OPAQUE_BASE_MODULE: SimpleNamespace(OpaqueBase=OpaqueBase),
        }
    )
    support = detect_opaque_support(find)
    assert (support.route, support.typ, support.base) == (
        "register_opaque_type",
        "value",
        OpaqueBase,
    )
    assert support.register is register_with_hoist


def test_no_hoist_parameter_means_strings() -> None:  # torch 2.10
    find, _ = finder(
        **{
            OPAQUE_OBJECT_MODULE: SimpleNamespace(register_opaque_type=register_without_hoist),
            OPAQUE_BASE_MODULE: SimpleNamespace(OpaqueBase=OpaqueBase),
        }
    )
    support = detect_opaque_support(find)
    assert (support.route, support.register, support.base) == ("none", None, object)
    assert "hoist" in support.reason


def test_hoist_without_opaque_base_means_strings() -> None:  # vendor builds reporting 2.11
    find, _ = finder(
        **{OPAQUE_OBJECT_MODULE: SimpleNamespace(register_opaque_type=register_with_hoist)}
    )
    support = detect_opaque_support(find)
    assert support.route == "none"
    assert OPAQUE_BASE_MODULE in support.reason


def test_custom_class_without_hoist_falls_through_to_the_old_name() -> None:
    find, _ = finder(
        **{
            OPAQUE_OBJECT_MODULE: SimpleNamespace(
                register_custom_class=register_without_hoist,
                register_opaque_type=register_with_hoist,
            ),
            OPAQUE_BASE_MODULE: SimpleNamespace(OpaqueBase=OpaqueBase),
        }
    )
    assert detect_opaque_support(find).route == "register_opaque_type"


@pytest.mark.parametrize(
    "opaque_module",
    [None, SimpleNamespace(), ImportError("cannot import name 'OpaqueBaseMeta'")],
    ids=["absent", "no-registration-function", "fails-to-import"],
)
def test_missing_opaque_objects_mean_strings(opaque_module: object) -> None:
    find, _ = finder(**{OPAQUE_OBJECT_MODULE: opaque_module})
    support = detect_opaque_support(find)
    assert (support.route, support.register, support.base) == ("none", None, object)
    assert support.reason


def test_register_hoisted_passes_the_route_and_hoist() -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []

    def register(cls: Any, **kwargs: Any) -> None:
        calls.append((cls, kwargs))

    support = OpaqueSupport("register_custom_class", register, "constant", object, "test")
    assert register_hoisted(OpaqueBase, support) is None
    assert calls == [(OpaqueBase, {"typ": "constant", "hoist": True})]


def test_refused_registration_falls_back_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(cls: Any, *, typ: str, hoist: bool) -> None:
        raise TypeError(f"Opaque type {cls} must subclass torch._opaque_base.OpaqueBase")

    support = OpaqueSupport("register_opaque_type", refuse, "value", object, "test")
    with caplog.at_level(logging.INFO, logger="ir_layername.support"):
        why = register_hoisted(OpaqueBase, support)
    assert why is not None and "must subclass" in why
    assert "layer names stay str" in caplog.text


def test_unsupported_route_is_not_registered() -> None:
    support = OpaqueSupport("none", None, None, object, "no hoist here")
    assert register_hoisted(OpaqueBase, support) == "no hoist here"


def test_import_if_present() -> None:
    assert import_if_present("torch._library") is not None
    assert import_if_present("torch._no_such_module_here") is None
    assert import_if_present("no_such_package_here.sub") is None


def test_installed_torch_follows_its_features() -> None:
    """The real torch: the route matches what its registration functions accept."""
    from torch._library import opaque_object

    support = ir_layername.OPAQUE_SUPPORT
    new = getattr(opaque_object, "register_custom_class", None)
    old = opaque_object.register_opaque_type
    if new is not None and "hoist" in inspect.signature(new).parameters:
        assert support.route == "register_custom_class"
    elif "hoist" in inspect.signature(old).parameters:
        assert support.route == "register_opaque_type"
        assert issubclass(ir_layername.LayerName, support.base)
    else:
        assert support.route == "none"
    assert (support.route != "none") == ir_layername.HAS_OPAQUE_TYPE
    assert (ir_layername.UNSUPPORTED_REASON is None) == ir_layername.HAS_OPAQUE_TYPE
    assert issubclass(ir_layername.LayerName, support.base)


@pytest.mark.skipif(not ir_layername.HAS_OPAQUE_TYPE, reason="torch cannot hoist value types")
def test_torch_registry_holds_layer_name_as_hoisted_value_type() -> None:
    from torch._library import opaque_object

    assert opaque_object.should_hoist(ir_layername.LayerName)
    info = opaque_object._OPAQUE_TYPES[ir_layername.LayerName]
    assert info.opaque_typ in ("value", "constant")
    assert torch._C._is_opaque_type_registered(info.class_name)
