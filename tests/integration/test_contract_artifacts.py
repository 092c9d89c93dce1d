"""The committed contract artifacts are exactly what the pinned solc makes of the sources."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from platone_bal.adapters.contracts import ARTIFACTS, compile_contracts

ROOT = Path(__file__).resolve().parents[2]
SOLCJS = ROOT / "node_modules" / ".bin" / "solcjs"

pytestmark = pytest.mark.integration


def test_committed_artifacts_match_a_fresh_compile() -> None:
    if not SOLCJS.exists():
        if os.environ.get("BAL_REQUIRE_INTEGRATION"):
            pytest.fail("node_modules/.bin/solcjs is required; run `npm ci`")
        pytest.skip("solc not installed (npm ci); BAL_REQUIRE_INTEGRATION=1 makes this a failure")
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["solc"]
    fresh = compile_contracts(SOLCJS, ROOT / "contracts")
    assert fresh["compiler"].startswith(pinned + "+commit")
    assert fresh["evmVersion"] == "shanghai"
    committed = json.loads(
        (ROOT / "src" / "platone_bal" / "adapters" / "artifacts" / ARTIFACTS).read_text()
    )
    assert committed == fresh, "contracts changed: run `make contracts` and commit the artifacts"
