"""Hugging Face transformers models on ir ops in one call: ``kernelize(model)``.

``pip install 'ir-op[transformers]'``. Nothing in this package imports transformers: modules are
recognized by what they compute (:mod:`ir_op.transformers.forms`), so ``import ir_op`` and
``import ir_op.transformers`` stay cheap and any model built of the same forms works.
"""

from ir_op.transformers.kernelize import kernelize
from ir_op.transformers.report import KernelizeReport

__all__ = ["KernelizeReport", "kernelize"]
