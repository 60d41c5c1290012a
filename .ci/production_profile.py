"""Run in the production profile (ir-op + ir-kernels-cuda, which brings ir-triton) by
``nox -s install-alone``.

Checks that ir-compile is not needed at run time and that an op call works here (on a machine
without a GPU: the native implementation, through the kernel set's plugin loading).
"""

import importlib.util

import torch

import ir_op
from ir_op import platforms

for absent in ("ir_compile", "ir_layername"):
    if importlib.util.find_spec(absent) is not None:
        raise SystemExit(f"{absent} must not be installed in the production profile")

x = torch.randn(5, 64, dtype=torch.bfloat16)
w = torch.randn(64, dtype=torch.bfloat16)
out = ir_op.ops.rms_norm(x, w, 1e-6)
expected = ir_op.ops.rms_norm.native_fn(x, w, 1e-6)
torch.testing.assert_close(out, expected)

loaded = platforms.loaded_kernel_sets()
errors = platforms.kernel_set_errors()
if "cuda" not in loaded:
    raise SystemExit(f"the cuda kernel set did not load: loaded={loaded} errors={errors}")
platform = platforms.current_platform().describe()
print(f"production profile ok: platform={platform}, kernel sets={sorted(loaded)}")
