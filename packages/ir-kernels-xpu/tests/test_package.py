"""The package installs with its metadata and type information."""

from importlib.metadata import requires, version
from importlib.resources import files

from packaging.requirements import Requirement

import ir_kernels_xpu


def test_version_matches_metadata() -> None:
    assert ir_kernels_xpu.__version__ == version("ir-kernels-xpu")


def test_ships_py_typed() -> None:
    assert files("ir_kernels_xpu").joinpath("py.typed").is_file()


def test_triton_comes_from_torch_not_from_a_requirement() -> None:
    """Torch's xpu build brings its own Triton (pytorch-triton-xpu); requiring the `triton`
    distribution, directly or through ir-op's `triton` extra, would install PyPI's over it."""
    requirements = [Requirement(r) for r in requires("ir-kernels-xpu") or []]
    names = {r.name for r in requirements}
    assert "triton" not in names
    (ir_op,) = [r for r in requirements if r.name == "ir-op"]
    assert ir_op.extras == set()
