"""The portable Triton body of each op, and the ``*Providers`` class a kernel set instantiates.

One body per op for every vendor: a kernel set passes its launch configuration
(:class:`~ir_triton.configs.RowLaunch`, :class:`~ir_triton.kernels.rotary.RotaryLaunch`, its
fp8 formats) and registers the providers under its own name and ``torch.ops`` namespace.

- :mod:`~ir_triton.kernels.norm`: ``rms_norm``, ``fused_add_rms_norm`` (and in place);
- :mod:`~ir_triton.kernels.activation`: ``silu_and_mul``, ``gelu_and_mul``,
  ``gelu_and_mul_sparse``;
- :mod:`~ir_triton.kernels.quant`, :mod:`~ir_triton.kernels.static_quant`: dynamic and static
  fp8 quantization;
- :mod:`~ir_triton.kernels.norm_quant`, :mod:`~ir_triton.kernels.activation_quant`: RMS norm and
  SiLU fused with static fp8 quantization;
- :mod:`~ir_triton.kernels.rotary`: ``rotary_embedding``.

Each module imports Triton.
"""
