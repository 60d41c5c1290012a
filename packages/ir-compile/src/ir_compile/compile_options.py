"""``mode`` and ``options`` of :func:`ir_compile.backend`, checked and resolved as ``torch.compile``
resolves them for its Inductor backend.

A mode names a set of Inductor options; the table is torch's own
(:func:`torch._inductor.list_mode_options`), read on each call, so every torch version gets its
own modes (``"reduce-overhead"`` turns on ``triton.cudagraphs``, ``"max-autotune"`` adds
``max_autotune`` and ``coordinate_descent_tuning``). As in ``torch.compile``, a mode and options
are not given together: a mode's options are :func:`torch._inductor.list_mode_options` of it, to
extend in one ``options`` dict.

The result is a dict of Inductor config entries (``-`` in a key read as ``_``, as torch does)
that the backend hands to ``compile_fx`` as ``config_patches``, together with the entries that
install the IR passes; ``compile_fx`` patches them for that compile only, so nothing stays in
the global Inductor config afterwards.

Two kinds of settings would switch the IR passes off silently, and are refused instead: modes or
options that turn off Inductor's pre- or post-grad passes (``use_pre_grad_passes`` /
``use_post_grad_passes`` false, as torch's ``"lite"`` mode does), and a ``pre_grad_pass_timing``
other than the ``"early"`` the pass manager needs for its cache key. Custom passes given in the
options (``pre_grad_custom_pass``, ``post_grad_custom_post_pass``) run before the IR passes, as
with :func:`ir_compile.install`.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from typing import Any

MODE_DEFAULT = "default"

_PASS_SWITCHES = {
    "use_pre_grad_passes": "pre-grad",
    "use_post_grad_passes": "post-grad",
}
"""Inductor options that, set false, skip the passes the IR passes are installed in."""

_REQUIRED_VALUES = {"pre_grad_pass_timing": "early"}
"""Inductor options the pass manager sets itself, with the only value it works with."""


def _mode_table() -> dict[str, dict[str, Any]]:
    from torch._inductor import list_mode_options

    table: dict[str, dict[str, Any]] = list_mode_options()
    return table


def _pass_switch_off(options: Mapping[str, Any]) -> str | None:
    """The first entry of ``options`` that turns off the passes the IR passes run in."""
    for key, value in options.items():
        if key.replace("-", "_") in _PASS_SWITCHES and value is False:
            return key
    return None


def valid_modes() -> list[str]:
    """The modes :func:`ir_compile.backend` accepts on this torch: torch's own, less those that
    turn off the passes the IR passes run in."""
    return [m for m, options in _mode_table().items() if _pass_switch_off(options) is None]


def mode_options(mode: str | None) -> dict[str, Any]:
    """The Inductor options of ``mode`` (``None`` and ``"default"``: none).

    Raises ``TypeError`` for a non-string and ``ValueError`` for a mode torch does not know or
    one that would turn the IR passes off, naming the valid modes.
    """
    if mode is None:
        return {}
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a str or None, got {mode!r} ({type(mode).__name__})")
    table = _mode_table()
    valid = valid_modes()
    if mode not in table:
        close = difflib.get_close_matches(mode, valid, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(
            f"mode={mode!r} is not a torch.compile mode{hint}; valid modes: "
            f"{', '.join(map(repr, valid))}"
        )
    switch = _pass_switch_off(table[mode])
    if switch is not None:
        raise ValueError(
            f"mode={mode!r} sets {switch}=False, which skips Inductor's "
            f"{_PASS_SWITCHES[switch.replace('-', '_')]} passes, where the IR passes run; "
            f"valid modes: {', '.join(map(repr, valid))}"
        )
    return dict(table[mode])


def _option_owner(key: str) -> tuple[Any, str] | None:
    """The config module holding ``key`` and the key in it (a device namespace's own options,
    ``"<device>.<key>"``, live in that device's module on torch versions that have them)."""
    from torch._inductor import config

    if key in config._config:  # type: ignore[attr-defined]
        return config, key
    try:
        from torch._inductor.codegen.common import (  # type: ignore[attr-defined,unused-ignore]
            get_compile_option_owner,
            init_backend_registration,
        )
    except ImportError:  # a torch without device-namespaced options
        return None
    init_backend_registration()
    owner: tuple[Any, str] | None = get_compile_option_owner(key)
    return owner


def _check_type(name: str, value: Any, owner: Any, key: str) -> None:
    """``value``'s type against the option's declared type, as ``torch.compile`` checks it
    (generic types such as ``Optional[int]`` are not checked)."""
    get_type = getattr(owner, "get_type", None)
    if get_type is None:
        return
    declared = get_type(key)
    if typing.get_origin(declared) is not None or not isinstance(declared, type):
        return
    if not isinstance(value, declared):
        raise TypeError(
            f"options[{name!r}] must be a {declared.__name__}, got {value!r} "
            f"({type(value).__name__})"
        )


def check_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` as Inductor config entries (keys with ``_`` for ``-``), each checked.

    Raises ``TypeError`` for a non-mapping, a non-string key or a value of the wrong type, and
    ``ValueError`` for an unknown key (naming close matches) or a value that would turn the IR
    passes off.
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(
            f"options must be a mapping of Inductor option names to values or None, got "
            f"{options!r} ({type(options).__name__})"
        )
    import torch._inductor

    checked: dict[str, Any] = {}
    for name, value in options.items():
        if not isinstance(name, str):
            raise TypeError(f"options keys must be Inductor option names (str), got {name!r}")
        key = name.replace("-", "_")
        owner = _option_owner(key)
        if owner is None:
            known = torch._inductor.list_options()
            close = difflib.get_close_matches(key, known, n=5)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise ValueError(
                f"options[{name!r}]: {key!r} is not an Inductor option{hint} (all of them: "
                "torch._inductor.list_options())"
            )
        _check_type(name, value, *owner)
        if key in _PASS_SWITCHES and value is False:
            raise ValueError(
                f"options[{name!r}]=False skips Inductor's {_PASS_SWITCHES[key]} passes, where "
                "the IR passes run; leave it out to compile with the IR passes"
            )
        required = _REQUIRED_VALUES.get(key)
        if required is not None and value != required:
            raise ValueError(
                f"options[{name!r}]={value!r}: the IR passes need {required!r} (their cache "
                "key covers the graph after the pre-grad pass); leave it out"
            )
        checked[key] = value
    return checked


def resolve(mode: str | None, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Inductor config entries of ``mode`` or ``options`` (see the module doc)."""
    if mode is not None and options is not None:
        shown = mode_options(mode) if isinstance(mode, str) and mode in valid_modes() else None
        hint = (
            f" (mode={mode!r} is options={shown!r}: add yours to that dict)"
            if shown is not None
            else ""
        )
        raise ValueError(
            "give mode or options, not both, as with torch.compile" + hint + "; "
            "torch._inductor.list_mode_options(mode) gives a mode's options"
        )
    if options is not None:
        return check_options(options)
    return mode_options(mode)
