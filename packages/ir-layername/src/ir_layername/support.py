"""What the installed torch offers for hoisted opaque value types, found by feature.

A value type registered with ``hoist=True`` is lifted into a graph input by torch.compile instead
of being baked into the graph as a constant. The API moved between releases, so the registration
route is chosen by what the installed torch has, never by its version string:

- ``register_custom_class`` with a ``hoist`` parameter (2.14 and later): ``typ="constant"``; the
  base class, where needed, comes from ``torch._custom_class_base``. The older names
  (``register_opaque_type``, ``torch._opaque_base``) log deprecation warnings there, so they are
  not touched.
- ``register_opaque_type`` with a ``hoist`` parameter (2.11 to 2.13): ``typ="value"``, and the
  class subclasses ``torch._opaque_base.OpaqueBase`` where that module exists (2.11 refuses any
  registered type without it; 2.12 and 2.13 accept value types with or without it).
- anything else (2.10, whose ``register_opaque_type`` has no ``hoist``; builds that report 2.11
  but lack ``hoist`` or ``torch._opaque_base``): no registration, layer names stay ``str``.

Whether registration then succeeds is decided by trying it (see ``register_hoisted``): a build
whose checks refuse the class falls back to strings as well.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

logger = logging.getLogger(__name__)

OPAQUE_OBJECT_MODULE = "torch._library.opaque_object"
CUSTOM_CLASS_BASE_MODULE = "torch._custom_class_base"
OPAQUE_BASE_MODULE = "torch._opaque_base"

Route = Literal["register_custom_class", "register_opaque_type", "none"]


@dataclass(frozen=True)
class OpaqueSupport:
    """How this torch registers a hoisted opaque value type.

    ``route`` names the registration function (``"none"``: torch cannot hoist value types);
    ``typ`` is the kind string that function takes for value types; ``base`` is the class a
    registered type subclasses (``object`` where torch offers no base); ``reason`` says in words
    why this route was chosen.
    """

    route: Route
    register: Callable[..., None] | None
    typ: str | None
    base: type
    reason: str


def import_if_present(name: str) -> ModuleType | None:
    """Import the module ``name``, or return None if this torch does not have it.

    Only absence counts as absence: a module that exists but fails to import raises.
    """
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # a parent package is missing
        return None
    if spec is None:
        return None
    return importlib.import_module(name)


def _takes_hoist(fn: object) -> bool:
    if not callable(fn):
        return False
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return "hoist" in parameters


def _base_from(module: ModuleType | None, attribute: str) -> type | None:
    base = getattr(module, attribute, None) if module is not None else None
    return base if isinstance(base, type) else None


def detect_opaque_support(
    find_module: Callable[[str], ModuleType | None] = import_if_present,
) -> OpaqueSupport:
    """Decide how to register a hoisted value type with the torch that ``find_module`` sees.

    ``find_module(name)`` returns the named module or None when it is absent; tests pass fakes.
    Modules that log deprecation warnings on import are only imported when the newer ones are
    absent.
    """
    try:
        opaque = find_module(OPAQUE_OBJECT_MODULE)
    except ImportError as error:  # e.g. a build whose opaque_object imports a missing base
        return OpaqueSupport(
            "none", None, None, object, f"{OPAQUE_OBJECT_MODULE} fails to import: {error}"
        )
    if opaque is None:
        return OpaqueSupport("none", None, None, object, f"torch has no {OPAQUE_OBJECT_MODULE}")

    register_custom_class = getattr(opaque, "register_custom_class", None)
    if _takes_hoist(register_custom_class):
        custom_base = _base_from(find_module(CUSTOM_CLASS_BASE_MODULE), "CustomClassBase")
        return OpaqueSupport(
            "register_custom_class",
            register_custom_class,
            "constant",
            custom_base or object,
            "register_custom_class(typ='constant', hoist=True)",
        )

    register_opaque_type = getattr(opaque, "register_opaque_type", None)
    if register_opaque_type is None:
        return OpaqueSupport(
            "none", None, None, object, f"{OPAQUE_OBJECT_MODULE} has no registration function"
        )
    if not _takes_hoist(register_opaque_type):
        return OpaqueSupport(
            "none", None, None, object, "register_opaque_type has no hoist parameter"
        )
    opaque_base = _base_from(find_module(OPAQUE_BASE_MODULE), "OpaqueBase")
    if opaque_base is None:
        return OpaqueSupport(
            "none",
            None,
            None,
            object,
            f"register_opaque_type has hoist but {OPAQUE_BASE_MODULE}.OpaqueBase is missing",
        )
    return OpaqueSupport(
        "register_opaque_type",
        register_opaque_type,
        "value",
        opaque_base,
        "register_opaque_type(typ='value', hoist=True) on torch._opaque_base.OpaqueBase",
    )


def register_hoisted(cls: type[Any], support: OpaqueSupport) -> str | None:
    """Register ``cls`` as a hoisted opaque value type along ``support``'s route.

    Returns None on success, or why the class stays unregistered. torch validates before it
    records anything, so a refused registration leaves torch's registry as it was.
    """
    if support.register is None:
        return support.reason
    try:
        support.register(cls, typ=support.typ, hoist=True)
    except (TypeError, ValueError, AssertionError, RuntimeError) as error:
        why = f"{support.route} refused {cls.__qualname__}: {error}"
        logger.info("layer names stay str: %s", why)
        return why
    return None
