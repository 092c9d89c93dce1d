"""benchmarks/lifecycle.py still runs end to end on both stores (a tiny workload): its
report has every part, its figures are there and positive, and its own validation of
the restore passed. No figure is compared with a threshold: timings belong to the
report, not to a test on a shared machine."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import postgres_cluster

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = "--days 3 --hot-days 2 --readings-per-day 120 --other-devices 1 --repeats 5"
PER_DAY = 120 + 288 * 4
"""The queried device's readings, and one other device's 4 readings every 300 s."""
STORES = ("sqlite", "postgres")


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf


@pytest.mark.timeout(240)
def test_lifecycle_benchmark_writes_its_report(tmp_path: Path) -> None:
    postgres_cluster.require_bindir()
    report = tmp_path / "lifecycle.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/lifecycle.py", *WORKLOAD.split(), "--report", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(report.read_text())
    assert next(iter(result)) == "summary"
    workload = result["workload"]
    assert (workload["days"], workload["hot_days"], workload["archived_days"]) == (3, 2, 1)
    assert workload["readings"] == 3 * PER_DAY
    assert result["machine"]["cpus"]
    for store in STORES:
        summary = result["summary"][store]
        for name, value in summary.items():
            if isinstance(value, dict):  # [p50, p95] of each way of running
                assert set(value) == {
                    "everything_hot",
                    "hot_window",
                    "everything_hot_again_after_restore",
                }, name
                assert all(len(ms) == 2 and all(map(positive, ms)) for ms in value.values()), name
            else:
                assert positive(value), (store, name, value)
        found = result[store]
        assert found["archive"]["readings"] == found["restore"]["readings"] == PER_DAY
        assert found["archive"]["parts"] == found["restore"]["parts"] == 1
        assert found["archive"]["seconds_by_call"]["store.archive_day"] > 0
        assert found["restore"]["seconds_by_call"]["store.restore_archive"] > 0
        assert found["archive"]["baseline"]["readings"] == PER_DAY
        assert found["restore"]["baseline"]["readings"] == PER_DAY
        assert found["bytes"]["archive"]["files"] == 1
        for way in ("everything_hot", "hot_window", "everything_hot_again_after_restore"):
            assert found["device_day"][way]["readings"]["queries"] == 5
        checked = found["validation"]
        assert checked["live_readings"] == 3 * PER_DAY
        assert checked["days_compared"] == 1
        (checks,) = checked["verified"].values()
        assert [line.split(":")[0] for line in checks] == [
            "file",
            "records",
            "tree",
            "signature",
            "anchor",
        ]
    assert set(result["summary"]["how_to_read"]) >= {"rates", "bytes", "latency"}
