"""The ir-op command and the explain API behind it."""

from __future__ import annotations

import json

import pytest
import torch
from torch import Tensor

from ir_op import IrOp, register_op
from ir_op.cli import main
from ir_op.explain import explain
from ir_op.testing import forced_platform


def test_info_text(capsys: pytest.CaptureFixture[str]) -> None:
    with forced_platform("cpu"):
        assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ir-op ")
    assert f"torch {torch.__version__}" in out
    assert "platform: cpu (tensors on cpu)" in out
    assert "  rms_norm: Root-mean-square normalization" in out
    assert "      native     ok" in out
    assert "    priority eager:   (none set: native)" in out
    composite = out[out.index("  rms_norm_static_fp8_quant:") :]
    assert composite.splitlines()[1] == "    composite of: rms_norm, static_scaled_fp8_quant"
    assert "      unfused    ok" in composite


def test_info_json_on_an_emulated_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    with forced_platform("cuda") as platform:
        assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["platform"] == {
        "name": "cuda",
        "emulated": platform.emulated,
        "tensor_device": platform.tensor_device,
    }
    rms = next(op for op in data["ops"] if op["name"] == "rms_norm")
    assert (
        rms["schema"]
        == "(Tensor x, Tensor? weight, float epsilon, SymInt? variance_size=None) -> Tensor"
    )
    assert {
        "provider": "native",
        "supported": True,
        "unsupported_reason": None,
        "inplace": False,
        "conditional": False,
    } in rms["providers"]
    assert rms["priority"]["compile"] == ["native"]
    assert rms["priority"]["eager"][-1] == "native"
    assert rms["components"] == []
    composite = next(op for op in data["ops"] if op["name"] == "rms_norm_static_fp8_quant")
    assert composite["components"] == ["rms_norm", "static_scaled_fp8_quant"]
    assert composite["priority"]["compile"] == ["unfused"]
    assert {op["name"] for op in data["ops"]} >= {
        "rms_norm",
        "fused_add_rms_norm",
        "gelu_and_mul_sparse",
    }


def test_info_reports_bad_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``info`` still shows every op (the one whose entry is wrong says so) and lists the
    problems; ``--check`` exits 1 on them."""
    monkeypatch.setenv("IR_OP_PRIORITY", "rms_norm=nope")
    with forced_platform("cpu"):
        assert main(["info"]) == 0
        out = capsys.readouterr().out
        assert "    priority eager:   error: op 'rms_norm': unknown provider 'nope'" in out
        assert "  silu_and_mul:" in out
        problems = out[out.index("\nproblems:\n") :]
        assert "  op 'rms_norm': unknown provider 'nope'; registered providers: native" in problems
        assert main(["info", "--check"]) == 1
    err = capsys.readouterr().err
    assert "ir-op info --check: 1 problem(s):" in err
    assert "  - op 'rms_norm': unknown provider 'nope'" in err


def test_info_check_passes_on_a_healthy_install(capsys: pytest.CaptureFixture[str]) -> None:
    with forced_platform("cpu"):
        assert main(["info", "--check"]) == 0
    captured = capsys.readouterr()
    assert "problems:" not in captured.out
    assert "ir-op info --check: no problems" in captured.err


@pytest.mark.parametrize(
    ("priority", "problem"),
    [
        (
            "rms_nrom=cuda,native",
            "unknown op 'rms_nrom' in IR_OP_PRIORITY; did you mean 'rms_norm'? registered ops:",
        ),
        ("silu_and_mul=native,cdua", "op 'silu_and_mul': unknown provider 'cdua'"),
        ("rms_norm", "IR_OP_PRIORITY: entry 'rms_norm' is not of the form op=provider"),
    ],
)
def test_info_check_fails_on_a_wrong_environment_priority(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    priority: str,
    problem: str,
) -> None:
    monkeypatch.setenv("IR_OP_PRIORITY", priority)
    with forced_platform("cpu"):
        assert main(["info", "--check", "--json"]) == 1
    captured = capsys.readouterr()
    assert any(p.startswith(problem) for p in json.loads(captured.out)["problems"])
    assert f"  - {problem}" in captured.err


def scale(x: Tensor, factor: float) -> Tensor:
    """Scale."""
    return x * factor


def small_only(x: Tensor, factor: float) -> bool:
    return x.shape[-1] <= 64


@pytest.fixture
def explained_op(isolated: dict[str, IrOp]) -> IrOp:
    op = register_op(scale)
    op.register_impl("small", supports_args=small_only)(scale)
    op.register_impl("gone", supported=False, unsupported_reason="needs a TPU")(scale)

    @op.register_input_generator
    def gen(
        num_tokens: int,
        hidden_size: int,
        dtype: torch.dtype,
        factor: float = 0.5,
        contiguous: bool = True,
        out_dtype: torch.dtype | None = None,
        device: str | None = None,
    ) -> tuple[object, ...]:
        x = torch.randn(num_tokens, hidden_size, dtype=out_dtype or dtype, device=device)
        return (x if contiguous else x.t().contiguous().t()), factor

    return op


def test_explain_api_agrees_with_dispatch(explained_op: IrOp) -> None:
    op = explained_op
    for width, picked in ((32, "small"), (128, "native")):
        args = op.generate_inputs(num_tokens=2, hidden_size=width, dtype=torch.float32)
        decisions = explain(op, args, priority=["gone", "small", "native"])
        assert [d.provider for d in decisions] == ["gone", "small", "native"]
        assert decisions[0].outcome == "unsupported" and decisions[0].reason == "needs a TPU"
        chosen = [d.provider for d in decisions if d.outcome == "selected"]
        assert chosen == [picked]
        with op.set_priority(["gone", "small", "native"]):
            assert op.dispatch(*args).provider == picked


def test_explain_fallback_and_errors(explained_op: IrOp) -> None:
    args = explained_op.generate_inputs(num_tokens=1, hidden_size=128, dtype=torch.float32)
    decisions = explain(explained_op, args, priority=["small"])
    assert decisions[-1].provider == "native" and decisions[-1].outcome == "fallback"
    assert [d.outcome for d in explain(explained_op, args)] == ["fallback"]
    with pytest.raises(ValueError, match="unknown provider 'nope'"):
        explain(explained_op, args, priority=["nope"])


def test_explain_command(explained_op: IrOp, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "explain",
                "scale",
                "--shape",
                "4x32",
                "--dtype",
                "float16",
                "--priority",
                "gone,small,native",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "scale(x: float16[4, 32], factor=0.5)" in out
    assert "gone       unsupported  needs a TPU" in out
    assert "small      selected     supports_args accepts these inputs" in out
    assert "native     not reached" in out
    assert out.rstrip().endswith("dispatch picks: small")


def test_explain_command_errors(explained_op: IrOp, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "nope"]) == 2
    assert "unknown op 'nope' in ir-op explain; registered ops: scale" in capsys.readouterr().err
    assert main(["explain", "scael"]) == 2
    assert "unknown op 'scael' in ir-op explain; did you mean 'scale'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["explain", "scale", "--shape", "4by32"])
    assert "is not TOKENSxHIDDEN" in capsys.readouterr().err
    assert main(["explain", "scale", "--priority", "small,nope"]) == 2
    assert "unknown provider 'nope'" in capsys.readouterr().err


def test_explain_takes_input_generator_options(
    explained_op: IrOp, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["explain", "scale", "--shape", "2x8", "--arg", "factor=2", "--arg", "contiguous=false"]
    assert main([*args, "--arg", "out_dtype=float64"]) == 0
    assert "scale(x: float64[2, 8], factor=2.0)" in capsys.readouterr().out
    assert main(["explain", "scale", "--shape", "2x8", "--arg", "factor=-1.5e-3"]) == 0
    assert "factor=-0.0015" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        (
            "facter=2",
            "--arg facter=...: the input generator of op 'scale' has no option 'facter'; "
            "did you mean 'factor'? options: factor, contiguous, out_dtype",
        ),
        ("factor=big", "option 'factor' of op 'scale' takes a float (default 0.5), got 'big'"),
        ("contiguous=1", "option 'contiguous' of op 'scale' takes a bool (default True), got 1"),
        ("hidden_size=3", "hidden_size is set by --shape, --dtype and the platform"),
    ],
)
def test_explain_refuses_bad_generator_options(
    explained_op: IrOp, capsys: pytest.CaptureFixture[str], arg: str, message: str
) -> None:
    assert main(["explain", "scale", "--arg", arg]) == 2
    assert message in capsys.readouterr().err


def test_explain_arg_syntax_and_repeats(
    explained_op: IrOp, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["explain", "scale", "--arg", "factor"])
    assert "--arg 'factor' is not NAME=VALUE" in capsys.readouterr().err
    assert main(["explain", "scale", "--arg", "factor=1", "--arg", "factor=2"]) == 2
    assert "--arg factor=... is given twice" in capsys.readouterr().err


def test_explain_real_op_with_options(capsys: pytest.CaptureFixture[str]) -> None:
    with forced_platform("cpu"):
        command = ["explain", "rotary_embedding", "--shape", "4x512", "--dtype", "float32"]
        assert main([*command, "--arg", "head_size=128", "--arg", "is_neox_style=false"]) == 0
    out = capsys.readouterr().out
    assert "query: float32[4, 512], key: float32[4, 128], head_size=128" in out
    assert "is_neox_style=False" in out


def test_explain_real_op(capsys: pytest.CaptureFixture[str]) -> None:
    with forced_platform("cpu"):
        assert main(["explain", "rms_norm", "--shape", "8x256", "--dtype", "bfloat16"]) == 0
    out = capsys.readouterr().out
    assert (
        "rms_norm(x: bfloat16[8, 256], weight: bfloat16[256], epsilon=1e-06, variance_size=None)"
        in out
    )
    assert "dispatch picks: native" in out
