"""The package installs with its metadata and type information."""

from importlib.metadata import version
from importlib.resources import files

import ir_kernels_rocm


def test_version_matches_metadata() -> None:
    assert ir_kernels_rocm.__version__ == version("ir-kernels-rocm")


def test_ships_py_typed() -> None:
    assert files("ir_kernels_rocm").joinpath("py.typed").is_file()
