"""ir_triton: its import contract, tables, row checks, support, operators."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

import ir_op
from ir_op.testing import forced_platform
from ir_triton import (
    NVIDIA_ROW_TABLE,
    RowConfig,
    RowLaunch,
    RowTable,
    define_kernel_op,
    interpreting,
    row_config,
    tracing,
    triton_unsupported_reason,
)
from ir_triton import kernel_ops as kernel_ops_module
from ir_triton.configs import elementwise_block
from ir_triton.rows import (
    has_row_layout,
    is_row_vector,
    num_rows,
    on_platform_device,
    row_stride,
    rows_are_disjoint,
)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )


def test_ir_op_imports_no_triton_code() -> None:
    # With the kernel sets off, nothing of ir-op imports ir_triton or Triton.
    result = _run(
        "import sys, ir_op, ir_op.ops, ir_op.platforms, ir_op.testing, ir_op.cli, "
        "ir_op.explain, ir_op.testing.conformance; ir_op.ops.rms_norm.get_priority(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ir_triton', 'triton')))",
        IR_OP_DISABLE_PLUGINS="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    package = Path(ir_op.__file__).parent
    code_import = re.compile(r"^\s*(import|from) (triton|ir_triton)\b", re.MULTILINE)
    for source in package.rglob("*.py"):
        assert not code_import.search(source.read_text()), source


def test_importing_ir_triton_needs_no_triton() -> None:
    code = (
        "import sys; sys.modules['triton'] = None; import ir_triton; "
        "print(ir_triton.TritonKernelSet.__name__, ir_triton.interpreting()); "
        "import ir_triton.kernels.norm"
    )
    result = _run(code, TRITON_INTERPRET="0")
    assert result.stdout.split() == ["TritonKernelSet", "False"], result.stderr
    assert result.returncode != 0
    assert "triton" in result.stderr.splitlines()[-1]


# -- tables -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_cols", "expected"),
    [
        (1, RowConfig(16, 64, 4, looped=False)),
        (8, RowConfig(16, 64, 4, looped=False)),
        (768, RowConfig(1024, 2, 4, looped=False)),
        (769, RowConfig(1024, 2, 4, looped=False)),
        (2048, RowConfig(2048, 1, 4, looped=False)),
        (4096, RowConfig(4096, 1, 8, looped=False)),
        (5120, RowConfig(8192, 1, 8, looped=False)),
        (8192, RowConfig(8192, 1, 8, looped=False)),
        (8193, RowConfig(4096, 1, 8, looped=True)),
        (12289, RowConfig(4096, 1, 8, looped=True)),
    ],
)
def test_nvidia_row_table(n_cols: int, expected: RowConfig) -> None:
    assert row_config(n_cols) == expected
    assert row_config(n_cols) is row_config(n_cols)  # answered from the memo the second time


@pytest.mark.parametrize(
    ("n_cols", "n_rows", "expected"),
    [
        (4096, 1, RowConfig(4096, 1, 8, looped=False)),
        (8192, 1, RowConfig(8192, 1, 16, looped=False)),
        (8192, 64, RowConfig(8192, 1, 16, looped=False)),  # decode_rows: 64
        (8192, 65, RowConfig(8192, 1, 8, looped=False)),  # more rows: the bandwidth choice
        (768, 3, RowConfig(1024, 2, 4, looped=False)),
        (12289, 1, RowConfig(4096, 1, 8, looped=True)),
    ],
)
def test_nvidia_row_table_for_decode_launches(
    n_cols: int, n_rows: int, expected: RowConfig
) -> None:
    assert row_config(n_cols, n_rows=n_rows) == expected
    assert NVIDIA_ROW_TABLE.is_decode(n_rows) is (n_rows <= 64)


def test_decode_choices_are_optional() -> None:
    table = RowTable(8192, 4096, 8, 2048, 64, 16, ((256, 1), (8192, 16)))
    assert table.config(8192, 1) == table.config(8192) == RowConfig(8192, 1, 16, looped=False)
    assert not table.is_decode(1)  # decode_rows 0: no decode launches
    with_rows = RowTable(8192, 4096, 8, 2048, 64, 16, ((256, 1), (8192, 16)), decode_rows=8)
    assert with_rows.is_decode(8) and with_rows.config(8192, 1).num_warps == 16


def test_row_config_grid() -> None:
    assert RowConfig(16, 64, 2, looped=False).grid(129) == (3,)
    assert RowConfig(4096, 1, 8, looped=True).grid(7) == (7,)


@pytest.mark.parametrize("n_cols", [0, -3, 2.5, True])
def test_row_config_rejects_bad_widths(n_cols: object) -> None:
    with pytest.raises(ValueError, match="a row-wise kernel needs n_cols >= 1"):
        NVIDIA_ROW_TABLE.config(n_cols)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_block": 3000}, "max_block must be a power of two"),
        ({"warps": ((8192, 16), (256, 1))}, "warps must be ascending"),
        ({"warps": ()}, "warps must be ascending"),
        ({"warps": ((256, 1),)}, "it must cover max_block=8192"),
        ({"decode_warps": ((256, 1),)}, "decode_warps ends at 256 elements"),
        ({"decode_rows": -1}, "decode_rows must be an int >= 0"),
        ({"min_tile": 0}, "min_tile and loop_warps must be >= 1"),
    ],
)
def test_row_table_validation(change: dict[str, object], message: str) -> None:
    fields = {
        "max_block": 8192,
        "loop_block": 4096,
        "loop_warps": 8,
        "min_tile": 2048,
        "max_rows": 64,
        "min_block": 16,
        "warps": ((256, 1), (8192, 16)),
    }
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        RowTable(**fields)  # type: ignore[arg-type]


# -- row checks ---------------------------------------------------------------------------------


def test_row_layouts() -> None:
    x = torch.randn(6, 10)
    assert has_row_layout(x) and row_stride(x) == 10 and rows_are_disjoint(x)
    padded = torch.randn(6, 15)[:, :10]
    assert has_row_layout(padded) and row_stride(padded) == 15 and num_rows(padded) == 6
    assert not has_row_layout(x.t())
    assert has_row_layout(torch.randn(10)) and row_stride(torch.randn(10)) == 10
    assert not has_row_layout(torch.tensor(1.0))
    three = torch.randn(2, 3, 10)
    assert has_row_layout(three) and row_stride(three) == 10 and num_rows(three) == 6
    assert not has_row_layout(three.transpose(0, 1))  # leading dimensions do not collapse
    stacked = torch.randn(2, 3, 15)[:, :, :10]
    assert has_row_layout(stacked) and row_stride(stacked) == 15
    split_rows = torch.randn(2, 4, 10)[:, :3]  # dimension 0 skips a row of dimension 1
    assert not has_row_layout(split_rows)
    ones = torch.randn(4, 19)[:, :10].reshape(4, 1, 1, 10)
    assert has_row_layout(ones) and row_stride(ones) == 19
    overlapping = torch.randn(10).expand(6, 10)
    assert has_row_layout(overlapping) and not rows_are_disjoint(overlapping)
    assert num_rows(torch.randn(0, 10)) == 0 and num_rows(torch.randn(3, 0)) == 0


def test_row_vector() -> None:
    w = torch.randn(10)
    assert is_row_vector(w, 10, torch.float32)
    assert not is_row_vector(None, 10, torch.float32)
    assert not is_row_vector(w, 11, torch.float32)
    assert not is_row_vector(w, 10, torch.bfloat16)
    assert not is_row_vector(torch.randn(20)[::2], 10, torch.float32)
    assert not is_row_vector(torch.randn(1, 10), 10, torch.float32)


def test_row_checks_on_fake_and_symbolic_tensors() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import (
        DimDynamic,
        ShapeEnv,
        StatelessSymbolicContext,
    )

    mode = FakeTensorMode(shape_env=ShapeEnv())
    context = StatelessSymbolicContext(dynamic_sizes=[DimDynamic.DYNAMIC] * 2)
    for real in (torch.randn(6, 10), torch.randn(6, 15)[:, :10], torch.randn(10, 6).t()):
        fake = mode.from_tensor(real, symbolic_context=context)
        for check in (has_row_layout, rows_are_disjoint):
            answer = check(fake)
            assert type(answer) is bool and answer == check(real)
        assert type(is_row_vector(fake[0], 10, real.dtype)) is bool


def test_platform_device_follows_the_platform() -> None:
    with forced_platform("cpu"):
        assert on_platform_device(torch.randn(2))
    with forced_platform("cuda") as platform:
        # emulated here (no GPU): Triton's interpreter takes CPU tensors
        assert on_platform_device(torch.randn(2)) is platform.emulated


# -- support and the interpreter switch ---------------------------------------------------------


def test_unsupported_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    with forced_platform("cpu"):
        assert triton_unsupported_reason("cuda") == "platform is cpu, not cuda"
    with forced_platform("rocm"):
        assert triton_unsupported_reason("cuda") == "platform is rocm, not cuda"
    with forced_platform("cuda") as platform:
        if not platform.emulated:
            pytest.skip("the emulation branches need a machine without the GPU")
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        assert interpreting() and triton_unsupported_reason("cuda") is None
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        assert not interpreting()
        reason = triton_unsupported_reason("cuda")
        assert reason is not None and "TRITON_INTERPRET=1 is not set" in reason


# -- operators for torch.compile ----------------------------------------------------------------


def test_tracing_follows_dispatch_modes() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    assert not tracing()
    with FakeTensorMode():
        assert tracing()


@pytest.mark.parametrize("qualname", ["no_namespace", "::name", "ns::", "a::b::c"])
def test_kernel_op_names(qualname: str) -> None:
    with pytest.raises(ValueError, match="qualname must look like 'namespace::name'"):
        define_kernel_op(qualname, lambda x: x)


def _double(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def test_interpreted_kernel_op_is_opaque_with_its_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_ops_module, "interpreting", lambda: True)
    with pytest.raises(ValueError, match="needs a fake kernel"):
        define_kernel_op("ir_op_test_kops::double_nofake", _double)
    op = define_kernel_op("ir_op_test_kops::double", _double, fake=torch.empty_like)
    assert op is torch.ops.ir_op_test_kops.double.default
    x = torch.randn(3)
    torch.testing.assert_close(op(x), x * 2)
    torch.library.opcheck(op, (x,))


def test_compiled_kernel_op_is_a_triton_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_ops_module, "interpreting", lambda: False)
    op = define_kernel_op("ir_op_test_kops::double_triton", _double)
    from torch._library.custom_ops import OPDEFS

    assert "ir_op_test_kops::double_triton" in OPDEFS
    x = torch.randn(3)
    torch.testing.assert_close(op(x), x * 2)


def test_row_launch_defaults_to_num_warps_and_no_hint() -> None:
    table = RowTable(8192, 4096, 8, 2048, 64, 16, ((256, 1), (8192, 16)))
    launch = RowLaunch(table)
    config = table.config(4096)
    assert launch.options(config) == {"num_warps": config.num_warps}
    assert launch.stream == ""


def test_row_launch_takes_backend_options_and_a_streaming_hint() -> None:
    table = RowTable(8192, 4096, 8, 2048, 64, 16, ((256, 1), (8192, 16)))

    def options(config: RowConfig) -> dict[str, object]:
        return {"num_warps": config.num_warps, "threads_per_warp": 16}

    launch = RowLaunch(table, options=options, stream=".cg")
    config = table.config(100)
    assert launch.options(config) == {"num_warps": config.num_warps, "threads_per_warp": 16}
    assert launch.stream == ".cg"


def test_row_launch_rejects_bad_choices() -> None:
    table = RowTable(8192, 4096, 8, 2048, 64, 16, ((256, 1), (8192, 16)))
    with pytest.raises(ValueError, match=r"RowLaunch.stream must be one of .*'\.cs'"):
        RowLaunch(table, stream=".cs")
    with pytest.raises(TypeError, match="RowLaunch.options must be callable"):
        RowLaunch(table, options={"num_warps": 4})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"RowLaunch.read_once must be one of .*'evict_never'"):
        RowLaunch(table, read_once="evict_never")
    with pytest.raises(ValueError, match=r"RowLaunch.reused must be one of .*'first'"):
        RowLaunch(table, reused="first")
    with pytest.raises(TypeError, match="RowLaunch.pdl must be None or callable"):
        RowLaunch(table, pdl=True)  # type: ignore[arg-type]


def test_row_launch_hints_and_pdl_reach_the_norm_plans() -> None:
    """The eviction hints and PDL of a RowLaunch become the norm kernels' constexprs and
    launch option; a new launch makes new plans."""
    from ir_triton.kernels.norm import RmsNormProviders
    from ir_triton.pdl import PDL_INSTRUCTIONS

    table = RowTable(8192, 4096, 8, 2048, 64, 16, ((256, 1), (8192, 16)), decode_rows=4)
    providers = RmsNormProviders(
        f"ir_test_norm_{id(table)}",
        RowLaunch(table, read_once="evict_first", reused="evict_last", pdl=lambda: True),
    )
    launch, rows, bound = providers._plan(64, None, True, False, True, False)
    assert launch is providers.launch and rows == table.config(64).rows
    assert bound.options.get("launch_pdl") is True
    assert list(bound.constexprs.values())[-4:] == ["", "evict_first", "evict_last", True]
    _, _, decode = providers._plan(64, None, True, False, False, True)
    assert "launch_pdl" not in decode.options
    assert decode.options["num_warps"] == table.config(64, 1).num_warps
    assert isinstance(PDL_INSTRUCTIONS, bool)


@pytest.mark.parametrize(
    ("n_cols", "block"),
    [(5120, 1024), (14336, 2048), (768, 256), (4096, 2048), (100, 128), (3000, 2048), (8, 8)],
)
def test_elementwise_block_divides_the_width_where_it_can(n_cols: int, block: int) -> None:
    assert elementwise_block(n_cols) == block


def test_row_launch_division_and_tile_fields() -> None:
    table = NVIDIA_ROW_TABLE
    plain = RowLaunch(table)
    assert plain.exact_division is True and plain.divisor_tiles is False
    assert plain.elementwise_config(5120) == table.config(5120)
    divided = RowLaunch(table, divisor_tiles=True)
    config = divided.elementwise_config(5120)
    assert (config.block, config.rows) == (1024, 2)
    assert config.num_warps == table.warps_for(2048)
    for name in ("exact_division", "divisor_tiles"):
        with pytest.raises(TypeError, match=f"RowLaunch.{name} must be a bool"):
            RowLaunch(table, **{name: 1})  # type: ignore[arg-type]


def test_row_launch_pdl_and_decode_choices() -> None:
    table = NVIDIA_ROW_TABLE
    never, always = RowLaunch(table), RowLaunch(table, pdl=lambda: True)
    assert not never.uses_pdl(False) and always.uses_pdl(False) and not always.uses_pdl(True)
    config = table.config(4096)
    options = always.launch_options(config, True)
    assert options == {"num_warps": config.num_warps, "launch_pdl": True}
    assert "launch_pdl" not in never.launch_options(config, False)
    assert always.row_config(4096, 1, False) == table.config(4096, 1)
    assert always.row_config(4096, 1, True) == table.config(4096)  # traced: never decode
    assert always.row_config(4096, 4096, False) == table.config(4096)
