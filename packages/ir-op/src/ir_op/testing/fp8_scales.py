"""A check that a ``dynamic_scaled_fp8_quant`` provider's scales are native's, bit for bit.

The op's tolerance lets float32 scales differ by 2 ulps, which a kernel that multiplies by a
rounded reciprocal of ``fp8_max`` stays within; a provider that promises the correctly rounded
quotient (``div_rn``) is held to it here. The inputs make that promise testable: each row's
amax is drawn among float32 values where ``amax * (1 / fp8_max)`` and ``amax / fp8_max`` differ
(the check asserts that there are such rows), and stands at a random column of its row.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ir_op import ops
from ir_op.ops.fp8 import fp8_max

ROWS = 67
COLS = 131


def hard_amaxes(n: int, fp8_dtype: torch.dtype, generator: torch.Generator) -> Tensor:
    """``n`` float32 amaxes in ``[0.5, 64)``, each one where multiplying by the float32
    reciprocal of ``fp8_max`` rounds differently from dividing by it."""
    limit = torch.tensor(fp8_max(fp8_dtype), dtype=torch.float32)
    found: list[Tensor] = []
    while sum(len(f) for f in found) < n:
        candidates = torch.rand(4 * n, generator=generator) * 64 + 0.5
        differ = candidates * (1 / limit) != candidates / limit
        found.append(candidates[differ])
    return torch.cat(found)[:n]


def rows_with_amaxes(amaxes: Tensor, cols: int, generator: torch.Generator) -> Tensor:
    """float32 ``[len(amaxes), cols]``: each row's values within ``±amax``, ``±amax`` itself at
    a random column."""
    n = amaxes.numel()
    x = (torch.rand(n, cols, generator=generator) * 2 - 1) * amaxes[:, None]
    where = torch.randint(0, cols, (n,), generator=generator)
    sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    x[torch.arange(n), where] = sign * amaxes
    return x


def _assert_bitwise(actual: Tensor, expected: Tensor, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {list(actual.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}"
    as_int = torch.int32 if expected.element_size() == 4 else torch.uint8
    mismatched = (actual.view(as_int) != expected.view(as_int)).sum().item()
    assert mismatched == 0, f"{what}: {mismatched} of {expected.numel()} differ in their bits"


def check_dynamic_scales_are_exact(provider: str, fp8_dtype: torch.dtype, device: str) -> None:
    """``provider``'s ``dynamic_scaled_fp8_quant`` gives native's scales and values bit for bit:
    per token (with and without a ``scale_ub`` that bounds about half the rows), per tensor over
    many rows and over one row. Inputs are float32 (so that the amaxes are exactly the hard
    ones), then bf16 (rounded, still mostly hard)."""
    impl = ops.dynamic_scaled_fp8_quant.impls[provider]
    generator = torch.Generator().manual_seed(20240607)
    amaxes = hard_amaxes(ROWS, fp8_dtype, generator)
    x32 = rows_with_amaxes(amaxes, COLS, generator)
    ub = torch.tensor([float(amaxes.median())])
    for values in (x32, x32.to(torch.bfloat16)):
        x = values.to(device)
        cases = [
            ("per token", x, True, None),
            ("per token, scale_ub", x, True, ub.to(device)),
            ("per tensor", x, False, None),
            ("per tensor, one row", x[ROWS // 2 : ROWS // 2 + 1], False, None),
        ]
        for name, rows, per_token, scale_ub in cases:
            args = (rows, per_token, scale_ub, fp8_dtype)
            what = f"{provider} {name} ({x.dtype}, {fp8_dtype})"
            assert impl.supports_args(*args), f"{what}: supports_args rejects the inputs"
            q, scales = impl.functional_fn(*args)
            expected_q, expected_scales = ops.dynamic_scaled_fp8_quant.native_fn(*args)
            _assert_bitwise(scales.cpu(), expected_scales.cpu(), f"{what}: scales")
            _assert_bitwise(q.cpu(), expected_q.cpu(), f"{what}: values")
