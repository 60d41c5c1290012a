"""The shared conformance suite (``ir_op.testing.conformance``) for the ``xpu`` provider.

Full grid on an Intel GPU; a subset under the Triton interpreter when the platform is emulated;
skipped in sessions for other platforms.
"""

from ir_op.testing.conformance import ProviderConformance


class TestXpuConformance(ProviderConformance):
    provider = "xpu"
    platform = "xpu"
