"""`python -m benchmarks.hammering`, the same as `benchmarks/hammer.py`."""

from __future__ import annotations

import sys

from benchmarks.hammering.cli import main

sys.exit(main())
