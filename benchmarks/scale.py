"""Run the scaling benchmark (the package benchmarks/scaling/, issue 16):
`.venv/bin/python benchmarks/scale.py`; `--help` says what it does."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if __name__ == "__main__":
    # imported here: the publisher processes (spawned) run this file's top level only
    from benchmarks.scaling.cli import main

    sys.exit(main())
