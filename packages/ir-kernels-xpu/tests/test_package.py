"""The package installs with its metadata and type information."""

from importlib.metadata import version
from importlib.resources import files

import ir_kernels_xpu


def test_version_matches_metadata() -> None:
    assert ir_kernels_xpu.__version__ == version("ir-kernels-xpu")


def test_ships_py_typed() -> None:
    assert files("ir_kernels_xpu").joinpath("py.typed").is_file()
