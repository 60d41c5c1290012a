"""The ``ir-op`` command: what is installed, and why dispatch picks what it picks.

``ir-op info [--json] [--check]`` and
``ir-op explain <op> --shape 8x4096 --dtype bfloat16 [--arg name=value ...]``.

``info --check`` is for gating a deployment: it exits 1 when a kernel set or platform plugin
failed to load or ``IR_OP_PRIORITY`` is wrong (text that does not parse, an op or a provider
that does not exist), listing each problem on stderr, and 0 on a healthy install.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import inspect
import json
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from typing import Any

import torch

import ir_op
from ir_op import platforms
from ir_op.defaults import env_priority_problems, unknown_op_message
from ir_op.explain import explain
from ir_op.op import IrOp


def _package_version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _triton_version() -> str | None:
    """The installed Triton's version, read from its distribution's metadata.

    Not by importing it: ``import triton`` fails where Triton is installed but its interpreter
    is asked for without numpy, and it is slow. ROCm and XPU builds of torch bring Triton under
    other distribution names (``pytorch-triton-rocm``, ...), so the name is looked up.
    """
    if importlib.util.find_spec("triton") is None:
        return None
    for dist in packages_distributions().get("triton", []):
        found = _package_version(dist)
        if found is not None:
            return found
    return "unknown version"


def collect_info() -> dict[str, Any]:
    """Everything ``ir-op info`` shows, as plain data."""
    platform = platforms.current_platform()
    platforms.ensure_kernels_loaded()
    loaded = platforms.loaded_kernel_sets()
    errors = platforms.kernel_set_errors()
    kernel_sets = [
        {
            "name": name,
            "distribution": ks.distribution,
            "version": ks.version,
            "module": ks.module,
            "error": None,
        }
        for name, ks in sorted(loaded.items())
    ] + [
        {
            "name": name,
            "distribution": None,
            "version": None,
            "module": None,
            "error": f"{type(e).__name__}: {e}",
        }
        for name, e in sorted(errors.items())
    ]
    problems = [
        f"kernel set {name!r} failed to load: {type(e).__name__}: {e}"
        for name, e in sorted(errors.items())
    ]
    problems += [
        f"platform plugin {name!r} failed to load: {type(e).__name__}: {e}"
        for name, e in sorted(platforms.platform_plugin_errors().items())
    ]
    problems += env_priority_problems()
    ops = []
    for name, op in sorted(IrOp.registry.items()):
        ops.append(
            {
                "name": name,
                "summary": str(op).split(" - ", 1)[1] if " - " in str(op) else "",
                "schema": op.schema,
                "components": [c.name for c in op.components],
                "providers": [
                    {
                        "provider": p,
                        "supported": impl.supported,
                        "unsupported_reason": impl.unsupported_reason,
                        "inplace": impl.inplace,
                        "conditional": not impl.supports_all_args,
                    }
                    for p, impl in op.impls.items()
                ],
                "priority": {
                    "eager": _priority_or_error(op, compiling=False),
                    "compile": _priority_or_error(op, compiling=True),
                },
            }
        )
    return {
        "ir_op": ir_op.__version__,
        "torch": torch.__version__,
        "triton": _triton_version(),
        "platform": {
            "name": platform.name,
            "emulated": platform.emulated,
            "tensor_device": platform.tensor_device,
        },
        "plugins_disabled": platforms.plugins.plugins_disabled(),
        "kernel_sets": kernel_sets,
        "platform_plugin_errors": {
            n: f"{type(e).__name__}: {e}" for n, e in platforms.platform_plugin_errors().items()
        },
        "ops": ops,
        "problems": problems,
    }


def _priority_or_error(op: IrOp, compiling: bool) -> list[str] | str:
    """The op's priority, or why it cannot have one (an ``IR_OP_PRIORITY`` entry naming a
    provider it lacks): ``info`` shows every op even then, and lists the cause as a problem."""
    try:
        return op.get_priority(compiling=compiling)
    except ValueError as e:
        return f"error: {e}"


def _format_info(info: dict[str, Any]) -> str:
    lines = [
        f"ir-op {info['ir_op']}  torch {info['torch']}  triton {info['triton'] or 'not installed'}",
    ]
    p = info["platform"]
    where = (
        f"emulated: no {p['name']} hardware here; its Triton kernels can run only in Triton's "
        "interpreter (TRITON_INTERPRET=1), on CPU tensors"
        if p["emulated"]
        else f"tensors on {p['tensor_device']}"
    )
    lines.append(f"platform: {p['name']} ({where})")
    lines.append("kernel sets:")
    if info["plugins_disabled"]:
        lines.append("  (plugins disabled by IR_OP_DISABLE_PLUGINS)")
    elif not info["kernel_sets"]:
        lines.append("  (none installed: every op runs its native implementation)")
    for ks in info["kernel_sets"]:
        if ks["error"]:
            lines.append(f"  {ks['name']:<8} FAILED TO LOAD: {ks['error']}")
        else:
            lines.append(f"  {ks['name']:<8} {ks['distribution']} {ks['version']}")
    for name, error in info["platform_plugin_errors"].items():
        lines.append(f"  platform plugin {name}: FAILED TO LOAD: {error}")
    lines.append("ops:")
    for op in info["ops"]:
        lines.append(f"  {op['name']}: {op['summary']}")
        if op["components"]:
            lines.append(f"    composite of: {', '.join(op['components'])}")
        for prov in op["providers"]:
            state = "ok" if prov["supported"] else f"unsupported: {prov['unsupported_reason']}"
            notes = [
                n
                for n, on in (("in-place", prov["inplace"]), ("conditional", prov["conditional"]))
                if on
            ]
            extra = f" [{', '.join(notes)}]" if notes else ""
            lines.append(f"      {prov['provider']:<10} {state}{extra}")
        lines.append(f"    priority eager:   {_format_priority(op['priority']['eager'])}")
        lines.append(f"    priority compile: {_format_priority(op['priority']['compile'])}")
    if info["problems"]:
        lines.append("problems:")
        lines += [f"  {problem}" for problem in info["problems"]]
    return "\n".join(lines)


def _format_priority(priority: list[str] | str) -> str:
    if isinstance(priority, str):
        return priority
    return ", ".join(priority) or "(none set: native)"


def _info(args: argparse.Namespace) -> int:
    data = collect_info()
    print(json.dumps(data, indent=2) if args.json else _format_info(data))
    if not args.check:
        return 0
    problems: list[str] = data["problems"]
    if problems:
        print(f"ir-op info --check: {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print("ir-op info --check: no problems", file=sys.stderr)
    return 0


def _parse_shape(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"shape {text!r} is not TOKENSxHIDDEN, e.g. 8x4096")
    return int(parts[0]), int(parts[1])


_DTYPES = ("float32", "float16", "bfloat16", "float64")


def _describe_argument(name: str, value: Any) -> str:
    if isinstance(value, torch.Tensor):
        dims = ", ".join(str(d) for d in value.shape)
        return f"{name}: {str(value.dtype).removeprefix('torch.')}[{dims}]"
    return f"{name}={value!r}"


_SHAPED = ("num_tokens", "hidden_size", "dtype", "device")
"""Input-generator parameters that ``--shape``, ``--dtype`` and the platform give."""


def _parse_arg(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(
            f"--arg {text!r} is not NAME=VALUE, e.g. --arg head_size=128"
        )
    return name.strip(), value.strip()


def _value_of(text: str) -> object:
    """``text`` as the Python value it spells: a bool, None, an int, a float, a torch dtype by
    name, else the string itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    dtype = getattr(torch, text, None)
    return dtype if isinstance(dtype, torch.dtype) else text


def _generator_options(op: IrOp, given: Sequence[tuple[str, str]]) -> dict[str, object]:
    """``--arg`` values as keyword arguments of ``op``'s input generator, checked against its
    parameters (and, where a parameter has a non-None default, that default's type)."""
    generator = op._input_generator
    if generator is None or not given:
        return {}
    parameters = inspect.signature(generator).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    valid = [
        n
        for n, p in parameters.items()
        if n not in _SHAPED
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    options: dict[str, object] = {}
    for name, text in given:
        if name in _SHAPED:
            raise ValueError(
                f"--arg {name}=...: {name} is set by --shape, --dtype and the platform"
            )
        if name not in valid and not takes_any:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"--arg {name}=...: the input generator of op {op.name!r} has no option {name!r}; "
                f"{hint}options: {', '.join(valid) or '(none)'}"
            )
        if name in options:
            raise ValueError(f"--arg {name}=... is given twice")
        value = _value_of(text)
        default = parameters[name].default if name in parameters else None
        if default is None or default is inspect.Parameter.empty:
            options[name] = value  # no default to tell the type by: the parsed value as it is
            continue
        if type(default) is float and type(value) is int:
            value = float(value)
        if type(value) is not type(default):
            raise ValueError(
                f"--arg {name}={text}: option {name!r} of op {op.name!r} takes a "
                f"{type(default).__name__} (default {default!r}), got {value!r}"
            )
        options[name] = value
    return options


def _explain(args: argparse.Namespace) -> int:
    # Kernel sets may define ops: load them before looking the op up.
    platforms.ensure_kernels_loaded()
    op = IrOp.registry.get(args.op)
    if op is None:
        print(f"ir-op explain: {unknown_op_message(args.op, 'ir-op explain')}", file=sys.stderr)
        return 2
    platform = platforms.current_platform()
    num_tokens, hidden_size = args.shape
    options = _generator_options(op, args.arg)
    inputs = op.generate_inputs(
        num_tokens=num_tokens,
        hidden_size=hidden_size,
        dtype=getattr(torch, args.dtype),
        device=platform.tensor_device,
        **options,
    )
    priority = [p.strip() for p in args.priority.split(",")] if args.priority else None
    decisions = explain(op, inputs, priority=priority)
    shown = ", ".join(
        _describe_argument(n, v) for n, v in zip(op.signature.parameter_names, inputs, strict=False)
    )
    print(f"{op.name}({shown})")
    print(f"platform: {platform.describe()}")
    print(f"priority: {', '.join(d.provider for d in decisions if d.outcome != 'fallback')}")
    for d in decisions:
        print(f"  {d.provider:<10} {d.outcome:<12} {d.reason}")
    picked = next(d.provider for d in decisions if d.outcome in ("selected", "fallback"))
    print(f"dispatch picks: {picked}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ir-op", description="Inspect ir-op: installed kernel sets, providers, priorities."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser(
        "info", help="platform, kernel sets, and every op's providers and priority"
    )
    info.add_argument("--json", action="store_true", help="print JSON for machines")
    info.add_argument(
        "--check",
        action="store_true",
        help="exit 1, listing the problems, when a kernel set failed to load or IR_OP_PRIORITY "
        "names an unknown op or provider (for gating a deployment)",
    )
    ex = sub.add_parser(
        "explain", help="which provider dispatch picks for generated inputs, and why"
    )
    ex.add_argument("op", help="op name, e.g. rms_norm")
    ex.add_argument("--shape", type=_parse_shape, default=(8, 4096), help="TOKENSxHIDDEN (8x4096)")
    ex.add_argument("--dtype", choices=_DTYPES, default="bfloat16")
    ex.add_argument(
        "--priority", help="comma-separated providers to try instead of the current priority"
    )
    ex.add_argument(
        "--arg",
        type=_parse_arg,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an option of the op's input generator, e.g. head_size=128 (repeatable; ints, "
        "floats, true/false, none and torch dtype names are parsed)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "info":
            return _info(args)
        return _explain(args)
    except (ValueError, TypeError, RuntimeError) as e:
        print(f"ir-op {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
