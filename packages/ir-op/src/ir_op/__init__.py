"""ir-op: LLM-inference ops defined once by typed PyTorch functions, computed by providers.

Public names follow vLLM IR, so code written against ``vllm.ir`` runs after an import change.
"""

from importlib.metadata import PackageNotFoundError, version

from ir_op import ops
from ir_op.impl import IrOpImpl
from ir_op.op import IrOp, IrOpInplace, IrOpInplaceOverload, register_op
from ir_op.priority import IrOpPriorityConfig
from ir_op.wrap import enable_torch_wrap, set_default_torch_wrap, torch_wrap_enabled

try:
    __version__ = version("ir-op")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "IrOp",
    "IrOpImpl",
    "IrOpInplace",
    "IrOpInplaceOverload",
    "IrOpPriorityConfig",
    "__version__",
    "enable_torch_wrap",
    "ops",
    "register_op",
    "set_default_torch_wrap",
    "torch_wrap_enabled",
]
