"""``python -m ir_op``: the same as the ``ir-op`` command."""

from ir_op.cli import main

raise SystemExit(main())
