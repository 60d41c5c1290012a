"""The ``xpu`` providers of the gated activations ``silu_and_mul``, ``gelu_and_mul`` and
``gelu_and_mul_sparse`` (Gemma3n's sparse GeGLU): the shared Triton kernels of
:mod:`ir_triton.kernels.activation`, launched for Intel GPUs with
:data:`~ir_kernels_xpu.configs.XE_ROW_LAUNCH`.

Semantics, kernel shapes and the arguments taken are described there. The bodies are the op's
arithmetic with plain row loads (see :mod:`ir_kernels_xpu.norm` for why they carry no cache
hints); sub-groups, tiles (the sparse GeGLU's one-block kernel up to 8192 wide, its looped one
beyond) and register-file mode come from :mod:`ir_kernels_xpu.configs`.

While compiling or tracing the providers call the ``torch.ops.ir_xpu`` operators of the same
names.
"""

from ir_kernels_xpu._support import PROVIDER, supported, unsupported_reason
from ir_kernels_xpu.configs import XE_ROW_LAUNCH
from ir_triton.kernels.activation import GatedActivationProviders

ACTIVATION = GatedActivationProviders("ir_xpu", XE_ROW_LAUNCH)
silu_and_mul_xpu = ACTIVATION.silu_and_mul
gelu_and_mul_xpu = ACTIVATION.gelu_and_mul
gelu_and_mul_sparse_xpu = ACTIVATION.gelu_and_mul_sparse
SILU_AND_MUL_OP = ACTIVATION.silu_and_mul_op
GELU_AND_MUL_OP = ACTIVATION.gelu_and_mul_op
GELU_AND_MUL_SPARSE_OP = ACTIVATION.gelu_and_mul_sparse_op

ACTIVATION.register(PROVIDER, supported, unsupported_reason)
