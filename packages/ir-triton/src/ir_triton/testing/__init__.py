"""The tests every Triton kernel set runs, as classes its test suite subclasses.

- :class:`~ir_triton.testing.registration.KernelSetRegistration`: its providers are registered
  for exactly the ops it lists, supported on its own platform only, and still registered (with
  the reason) where Triton, or the numpy of Triton's interpreter, is missing.
- :class:`~ir_triton.testing.shared_rows.SharedRowKernelsChecks`: the shared row bodies under
  the kernel set's launch configuration, on their looped paths, while tracing and compiled.

They need pytest; the second needs Triton. Import them from their modules.
"""
