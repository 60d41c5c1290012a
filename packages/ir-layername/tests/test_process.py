"""What happens at import, checked in a fresh interpreter: no deprecation warning, env switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import ir_layername


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; fail with its stderr unless it succeeds."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def last_json_line(text: str) -> dict[str, object]:
    report: dict[str, object] = json.loads(text.strip().splitlines()[-1])
    return report


def test_import_is_silent_and_warns_nothing() -> None:
    """No warning, no log record (torch logs its deprecations), nothing on stdout or stderr.

    torch is imported first; only what importing ir_layername adds is checked.
    """
    result = run_python(
        """
        import json, logging, sys, warnings
        import torch

        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())
        for name in ("", "torch"):  # torch's loggers do not propagate to the root
            logging.getLogger(name).addHandler(Keep(level=logging.WARNING))
        print("<<<", file=sys.stderr, flush=True)
        print("<<<", flush=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import ir_layername
        sys.stdout.flush()
        print(">>>", file=sys.stderr, flush=True)
        print(">>>")
        print(json.dumps({
            "warnings": [str(w.message) for w in caught],
            "records": records,
            "route": ir_layername.OPAQUE_SUPPORT.route,
        }))
        """
    )
    report = last_json_line(result.stdout)
    assert report["route"] == ir_layername.OPAQUE_SUPPORT.route
    assert report["warnings"] == []
    assert report["records"] == []
    for stream in (result.stdout, result.stderr):
        during_import = stream.split("<<<\n", 1)[1].split(">>>", 1)[0]
        assert during_import == ""


def test_env_switch_turns_layer_names_off() -> None:
    result = run_python(
        """
        import json, torch
        import ir_layername
        from ir_layername.testing import AotLayerCounter, DecoderStack

        model = DecoderStack(8, plain_strings=False)
        x = torch.randn(3, 32)
        counter = AotLayerCounter()
        out = torch.compile(model, backend=counter, fullgraph=True)(x)
        print(json.dumps({
            "has": ir_layername.HAS_OPAQUE_TYPE,
            "use": ir_layername.USE_LAYERNAME,
            "type": ir_layername.LayerNameType.__name__,
            "encoded": type(ir_layername.encode_layer_name("a")).__name__,
            "bodies": counter.layer_bodies,
            "equal": bool(torch.equal(out, model(x))),
        }))
        """,
        IR_USE_LAYERNAME="0",
    )
    report = last_json_line(result.stdout)
    assert report == {
        "has": ir_layername.HAS_OPAQUE_TYPE,
        "use": False,
        "type": "str",
        "encoded": "str",
        "bodies": [8],
        "equal": True,
    }


def test_bad_env_value_fails_import_with_the_choices() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import ir_layername"],
        env={**os.environ, "IR_USE_LAYERNAME": "maybe"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "IR_USE_LAYERNAME='maybe' is not understood" in result.stderr
