"""The package installs with its metadata and type information."""

from importlib.metadata import version
from importlib.resources import files

import ir_compile


def test_version_matches_metadata() -> None:
    assert ir_compile.__version__ == version("ir-compile")


def test_ships_py_typed() -> None:
    assert files("ir_compile").joinpath("py.typed").is_file()
