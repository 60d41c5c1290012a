"""``Platform``: what kind of machine this is, and which providers it prefers."""

from __future__ import annotations

from typing import ClassVar

from ir_op.priority import IrOpPriorityConfig


class Platform:
    """A kind of device, with the default priorities that suit it.

    Subclasses set :attr:`name` (what ``IR_OP_PLATFORM`` selects), :attr:`device_type` (the
    torch device type of the real hardware) and :attr:`kernel_set` (the provider of the
    kernel set made for it), and implement :meth:`is_available`.

    A platform forced with ``IR_OP_PLATFORM`` on a machine without its hardware is *emulated*:
    its kernel set registers as supported and its Triton kernels run under the Triton
    interpreter on CPU tensors (``TRITON_INTERPRET=1``), which is how CI tests GPU kernels.
    """

    name: ClassVar[str]
    device_type: ClassVar[str]
    kernel_set: ClassVar[str | None] = None

    def __init__(self, *, emulated: bool = False) -> None:
        self.emulated = emulated

    @classmethod
    def is_available(cls) -> bool:
        """Whether this machine has the platform's hardware and software."""
        raise NotImplementedError

    @property
    def tensor_device(self) -> str:
        """The torch device type that this platform's kernels take tensors on."""
        return "cpu" if self.emulated else self.device_type

    def eager_providers(self) -> list[str]:
        """The provider order for eager calls: the platform's kernel set, then native."""
        return [self.kernel_set, "native"] if self.kernel_set else []

    def compile_providers(self) -> list[str]:
        """The order under Inductor: native, which Inductor fuses with its neighbours."""
        return ["native"] if self.kernel_set else []

    def get_default_ir_op_priority(self, compiling: bool) -> IrOpPriorityConfig:
        """The default priority of every registered op, for compile or for eager mode.

        Providers that an op does not have are skipped when the default is applied.
        """
        providers = self.compile_providers() if compiling else self.eager_providers()
        if not providers:
            return IrOpPriorityConfig()
        return IrOpPriorityConfig.with_default(providers)

    def import_ir_kernels(self) -> None:
        """Import the kernel sets this platform uses: by default every installed one.

        Each registers its providers, marked unsupported (with a reason) where its hardware is
        absent, so ``ir-op info`` can show them all. A platform that must not load another
        vendor's kernels overrides this, e.g. with ``load_kernel_sets([my_kernel_set])``.
        """
        from ir_op.platforms.plugins import load_kernel_sets

        load_kernel_sets()

    def describe(self) -> str:
        return f"{self.name} (emulated)" if self.emulated else self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(emulated={self.emulated})"
