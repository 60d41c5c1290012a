"""Sessions for the ir package family: tests over PyTorch versions x devices, lint, install checks.

    nox -l                                    list the sessions
    nox -t ci                                 what CI runs (README's test command)
    nox -s tests-torch211                     torch 2.11 on every device
    nox -s "tests-torch211(device='cuda')"    one device

On a machine without a device's hardware its session is emulated: ``IR_OP_PLATFORM`` forces the
platform and ``TRITON_INTERPRET=1`` runs the kernel set's Triton kernels on CPU tensors; tests
marked ``gpu`` are skipped with that reason.

CI runs torch 2.10 (the oldest supported), 2.11 and 2.15 (the newest, what a fresh install gets),
each on every device, and must finish within an hour on two cores. Every test of every package
runs on each of them, with one difference: the provider conformance grid
(``ir_op.testing.conformance``, most of the emulated sessions' time) runs whole, in every dtype,
only on the newest torch; the other torches run it with ``--conformance-grid smoke``: every op,
check, layout, special value and input variant, in bfloat16 only. The kernels' numerics do not
depend on torch's version; what does (custom-op registration, fake tensors, opcheck, Dynamo and
Inductor) is exercised as fully by one dtype as by three. Append ``-- --conformance-grid full``
to run the whole grid on another torch: ``nox -s tests-torch211 -- --conformance-grid full``.
Tests run on one pytest-xdist worker per core.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"
nox.options.error_on_external_run = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PACKAGES = [
    "ir-op",
    "ir-triton",
    "ir-layername",
    "ir-compile",
    "ir-kernels-cuda",
    "ir-kernels-rocm",
    "ir-kernels-xpu",
]
TORCH_VERSIONS = {"210": "2.10.*", "211": "2.11.*", "213": "2.13.*", "215": "2.15.*"}
CI_TORCH = ("210", "211", "215")
"""The oldest supported torch, the one the GPU images run, and the newest (a fresh install's)."""
FULL_GRID_TORCH = "215"
"""The torch whose sessions run the whole conformance grid; the others run its smoke subset."""
DEVICES = ["cpu", "cuda", "rocm", "xpu"]
LINT_TORCH = "2.11.*"


def _workspace_install_args() -> list[str]:
    args: list[str] = []
    for package in PACKAGES:
        args += ["-e", str(ROOT / "packages" / package)]
    return args


def _install(session: nox.Session, torch_spec: str, *groups: str) -> None:
    requirements = [
        req for group in groups for req in nox.project.dependency_groups(PYPROJECT, group)
    ]
    session.install(f"torch=={torch_spec}", *_workspace_install_args(), *requirements)


def _device_available(session: nox.Session, device: str) -> bool:
    probe = (
        "from ir_op.platforms import builtin_platforms; "
        f"print(builtin_platforms()[{device!r}].is_available())"
    )
    out = session.run("python", "-c", probe, silent=True, env={"IR_OP_DISABLE_PLUGINS": "1"})
    return isinstance(out, str) and out.strip().endswith("True")


def _tests(session: nox.Session, torch_spec: str, device: str, grid: str) -> None:
    _install(session, torch_spec, "test")
    env = {"IR_OP_PLATFORM": device}
    if device != "cpu" and not _device_available(session, device):
        env["TRITON_INTERPRET"] = "1"
        session.log(
            f"EMULATED: no {device} hardware here, so the {device} platform is simulated "
            "(IR_OP_PLATFORM) and its Triton kernels run in the interpreter on CPU tensors; "
            "tests marked gpu are skipped"
        )
    session.run(
        "pytest",
        "packages",
        "--device",
        device,
        "--conformance-grid",
        grid,
        *_workers(),
        *session.posargs,
        env=env,
    )


def _workers() -> list[str]:
    """pytest-xdist workers: one per core (the tests are single-threaded Python, mostly Triton's
    interpreter), none on a one-core machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return ["-n", str(cores)] if cores and cores > 1 else []


def _make_tests_session(tag: str, torch_spec: str) -> None:
    tags = ["tests", "ci"] if tag in CI_TORCH else ["tests"]
    grid = "full" if tag == FULL_GRID_TORCH else "smoke"

    @nox.session(name=f"tests-torch{tag}", tags=tags)
    @nox.parametrize("device", DEVICES)
    def tests(session: nox.Session, device: str) -> None:
        _tests(session, torch_spec, device, grid)

    tests.__doc__ = (
        f"pytest over every package with torch {torch_spec}, per device (conformance grid: {grid})."
    )


for _tag, _spec in TORCH_VERSIONS.items():
    _make_tests_session(_tag, _spec)


@nox.session(tags=["ci"])
def lint(session: nox.Session) -> None:
    """ruff, mypy (strict: ir-op, ir-triton, ir-layername), import contracts, CHANGELOGs."""
    _install(session, LINT_TORCH, "lint", "test")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", *[arg for p in _import_names() for arg in ("-p", p)])
    session.run("lint-imports")
    session.run("python", ".ci/check_changelogs.py")
    session.run("pytest", ".ci/tests", "--device", "cpu")


def _import_names() -> list[str]:
    return [p.replace("-", "_") for p in PACKAGES]


def _wheel_requirements(wheel: Path) -> list[str]:
    """The workspace packages that a wheel's metadata declares it needs."""
    with zipfile.ZipFile(wheel) as zf:
        metadata_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(zf.read(metadata_name).decode())
    names = {canonicalize_name(Requirement(r).name) for r in metadata.get_all("Requires-Dist", [])}
    return [package for package in PACKAGES if package in names]


def _wheel_of(dist: Path, package: str) -> Path:
    matches = sorted(dist.glob(f"{package.replace('-', '_')}-*.whl"))
    if len(matches) != 1:
        raise RuntimeError(f"expected one wheel for {package} in {dist}, found {matches}")
    return matches[0]


@nox.session(name="install-alone", tags=["ci"])
def install_alone(session: nox.Session) -> None:
    """Build every wheel, install each alone in a fresh venv, import it with ``python -I``.

    Also the production profile: ir-op + ir-kernels-cuda only, where ir_compile is absent and
    an op call works, from the wheels and from README's install-from-a-checkout line.
    """
    session.install("uv")
    work = Path(tempfile.mkdtemp(prefix="ir-install-alone-"))
    dist = work / "dist"
    session.run("uv", "build", "--all-packages", "--out-dir", str(dist), "--quiet")

    def venv_with(name: str, packages: list[str]) -> Path:
        venv = work / name
        session.run("uv", "venv", "--quiet", str(venv))
        wheels: list[str] = []
        for package in packages:
            for needed in [package, *_wheel_requirements(_wheel_of(dist, package))]:
                wheel = str(_wheel_of(dist, needed))
                if wheel not in wheels:
                    wheels.append(wheel)
        session.run("uv", "pip", "install", "--quiet", "--python", str(venv), *wheels)
        return venv / "bin" / "python"

    try:
        for package in PACKAGES:
            python = venv_with(package, [package])
            module = package.replace("-", "_")
            session.run(
                str(python),
                "-I",
                "-c",
                f"import {module}, importlib.resources as r; "
                f"assert r.files({module!r}).joinpath('py.typed').is_file(), 'py.typed missing'; "
                f"print({module!r}, 'imports alone')",
                external=True,
            )
        python = venv_with("production", ["ir-op", "ir-kernels-cuda"])
        session.run(str(python), "-I", str(ROOT / ".ci" / "production_profile.py"), external=True)
        session.run(str(python.parent / "ir-op"), "info", external=True)
        # README's install from a checkout, its arguments as written (uv's pip resolves them as
        # pip does, and reuses the cached torch).
        venv = work / "from-checkout"
        session.run("uv", "venv", "--quiet", str(venv))
        with session.chdir(ROOT):
            session.run(
                "uv", "pip", "install", "--quiet", "--python", str(venv), *readme_checkout_install()
            )
        python = venv / "bin" / "python"
        session.run(str(python), "-I", str(ROOT / ".ci" / "production_profile.py"), external=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def readme_checkout_install() -> list[str]:
    """The arguments of README's ``pip install ./packages/...`` line (install from a checkout)."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("pip install ./packages/"):
            return line.split()[2:]
    raise RuntimeError("README.md has no 'pip install ./packages/...' line")


@nox.session(python=False)
def versions(session: nox.Session) -> None:
    """Print each package's version and its sibling ranges (for release notes)."""
    for package in PACKAGES:
        project = nox.project.load_toml(ROOT / "packages" / package / "pyproject.toml")["project"]
        siblings = [
            d
            for d in project.get("dependencies", [])
            if canonicalize_name(Requirement(d).name) in PACKAGES
        ]
        session.log(
            json.dumps({"package": package, "version": project["version"], "needs": siblings})
        )
