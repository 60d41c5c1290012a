"""The shared conformance suite (``ir_op.testing.conformance``) for the ``cuda`` provider.

Full grid on an NVIDIA GPU; a subset under the Triton interpreter when the platform is emulated;
skipped in sessions for other platforms.
"""

from ir_op.testing.conformance import ProviderConformance


class TestCudaConformance(ProviderConformance):
    provider = "cuda"
    platform = "cuda"
