"""The package installs with its metadata and type information."""

from importlib.metadata import version
from importlib.resources import files

import ir_layername


def test_version_matches_metadata() -> None:
    assert ir_layername.__version__ == version("ir-layername")


def test_ships_py_typed() -> None:
    assert files("ir_layername").joinpath("py.typed").is_file()
