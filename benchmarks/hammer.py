"""Run the hammer (the package benchmarks/hammering/): `.venv/bin/python benchmarks/hammer.py
--seconds 60`; `--help` says what it does."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.hammering.cli import main

if __name__ == "__main__":
    sys.exit(main())
