"""The package's public surface."""

from importlib.metadata import version
from importlib.resources import files

import ir_op


def test_version_matches_metadata() -> None:
    assert ir_op.__version__ == version("ir-op")


def test_ships_py_typed() -> None:
    assert files("ir_op").joinpath("py.typed").is_file()


def test_public_names() -> None:
    for name in (
        "register_op",
        "IrOp",
        "IrOpInplace",
        "IrOpImpl",
        "IrOpPriorityConfig",
        "set_default_torch_wrap",
        "enable_torch_wrap",
        "ops",
    ):
        assert name in ir_op.__all__
        assert getattr(ir_op, name) is not None


def test_import_is_silent_and_lazy() -> None:
    import subprocess
    import sys

    code = "import sys, ir_op; print(sorted(m for m in sys.modules if m.startswith('ir_kernels')))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"  # kernel sets load on first use, not on import
    assert result.stderr == ""
