"""The package installs with its metadata and type information."""

from importlib.metadata import version
from importlib.resources import files

import ir_kernels_cuda


def test_version_matches_metadata() -> None:
    assert ir_kernels_cuda.__version__ == version("ir-kernels-cuda")


def test_ships_py_typed() -> None:
    assert files("ir_kernels_cuda").joinpath("py.typed").is_file()
