"""The ``rocm`` providers of the gated activations ``silu_and_mul``, ``gelu_and_mul`` and
``gelu_and_mul_sparse`` (Gemma3n's sparse GeGLU): the shared Triton kernels of
:mod:`ir_triton.kernels.activation`, launched for AMD Instinct GPUs with
:data:`~ir_kernels_rocm.configs.CDNA_ROW_LAUNCH`.

Semantics, kernel shapes and the arguments taken are described there. AMD-specific choices, all
in the launch: read-once activations stream (``cache_modifier=".cg"``, an ``nt`` load on
CDNA3/CDNA4), tiles and wavefronts come from :data:`~ir_kernels_rocm.configs.CDNA_ROW_TABLE`
(the sparse GeGLU's one-block kernel up to 16384 wide, its looped one beyond). The arithmetic is
the op's, the same on every vendor; the looped kernel's first two passes read with default
caching so that the third finds the row in L2.

While compiling or tracing the providers call the ``torch.ops.ir_rocm`` operators of the same
names.
"""

from ir_kernels_rocm._support import PROVIDER, supported, unsupported_reason
from ir_kernels_rocm.configs import CDNA_ROW_LAUNCH
from ir_triton.kernels.activation import GatedActivationProviders

ACTIVATION = GatedActivationProviders("ir_rocm", CDNA_ROW_LAUNCH)
silu_and_mul_rocm = ACTIVATION.silu_and_mul
gelu_and_mul_rocm = ACTIVATION.gelu_and_mul
gelu_and_mul_sparse_rocm = ACTIVATION.gelu_and_mul_sparse
SILU_AND_MUL_OP = ACTIVATION.silu_and_mul_op
GELU_AND_MUL_OP = ACTIVATION.gelu_and_mul_op
GELU_AND_MUL_SPARSE_OP = ACTIVATION.gelu_and_mul_sparse_op

ACTIVATION.register(PROVIDER, supported, unsupported_reason)
