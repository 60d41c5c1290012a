"""Guarded, feature-detected patches of stock Inductor."""

from ir_compile.inductor_patches.opaque import install as install_opaque_patches

__all__ = ["install_opaque_patches"]
