"""Fusion passes written against IR ops: one pattern serves every provider."""

from ir_compile.fusion.fusions import FUSION_NAMES, FusionPass, check_fusion_names, fusion_pattern
from ir_compile.fusion.pattern import PatternError, composition_pattern

__all__ = [
    "FUSION_NAMES",
    "FusionPass",
    "PatternError",
    "check_fusion_names",
    "composition_pattern",
    "fusion_pattern",
]
