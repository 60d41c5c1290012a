"""Lowering through the providers of whatever kernel sets this platform supports.

Generic over ops and kernel sets: on a session whose platform has a kernel set installed (``nox
-s "tests-torch211(device='cuda')"``, emulated without the GPU) every supported provider of every
op is lowered and compared with the same provider run eagerly; elsewhere the test is skipped.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ir_compile.fx_utils import ir_calls
from ir_compile.passes.lowering import IrLoweringPass
from ir_compile.priorities import CompilePriorities, as_priority_config
from ir_compile.testing import ir_graph, run_graph
from ir_op import IrOp, ops
from ir_op.testing import assert_outputs_close, preserved_priorities

RESERVED = ("native", "unfused")


def kernel_set_cases() -> list[tuple[IrOp, str]]:
    return [
        (op, provider)
        for op in (getattr(ops, name) for name in ops.__all__)
        for provider in op.supported_providers()
        if provider not in RESERVED
    ]


def test_kernel_set_providers_lower_like_eager(ir_device: Any) -> None:
    cases = kernel_set_cases()
    if not cases:
        pytest.skip(f"no kernel set provider is supported on the {ir_device.name} platform here")
    for op, provider in cases:
        torch.manual_seed(0)
        args = op.generate_inputs(
            num_tokens=5, hidden_size=64, dtype=torch.bfloat16, device=ir_device.tensor_device
        )
        if not op.impls[provider].supports_args(*args):
            continue
        with preserved_priorities():
            op.set_default([provider, "native"])
            expected = op(*args)
        gm = ir_graph(op, *args)
        lowering = IrLoweringPass(CompilePriorities(as_priority_config({op.name: [provider]})))
        lowering(gm.graph)
        assert lowering.selected[op.name] and set(lowering.selected[op.name].values()) == {
            provider
        }, (op.name, provider)
        assert all(call.op is not op for call in ir_calls(gm.graph))
        assert_outputs_close(op, run_graph(gm, *args), expected)
