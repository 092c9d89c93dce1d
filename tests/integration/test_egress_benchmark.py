"""benchmarks/egress.py still runs end to end on a tiny workload, on a real Mosquitto and
a real Tansu: its report has every part and its figures are there and positive. Each
run's delivery is checked by the benchmark itself (a subscriber's count and fingerprint,
a consumer group's records), which fails otherwise. No figure is compared with a
threshold: timings belong to the report, not to a test on a shared machine."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_binary
from tests.integration.tansu import tansu_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
READINGS = 404
"""`--readings 400`: the fleet's 150 meters (2 readings each), then PMUs (13 each) until
400 or more: 8 of them."""
ORDER = ["baseline", "egress", "egress", "baseline"]


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf


@pytest.mark.timeout(90)
def test_egress_benchmark_writes_its_report(tmp_path: Path) -> None:
    require_binary("mosquitto")
    tansu_binary()
    report = tmp_path / "egress.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/egress.py", "--readings", "400", "--report", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(report.read_text())
    assert next(iter(result)) == "summary"
    summary = result["summary"]
    assert summary["readings"] == result["workload"]["readings"] == READINGS
    assert result["workload"]["skipped"] == []
    assert result["fill"]["checkpoint_size"] == READINGS
    assert result["machine"]["cpus"]
    for broker in ("mqtt", "kafka"):
        figures = summary[broker]
        assert set(figures) == {
            "egress_readings_per_s",
            "baseline_readings_per_s",
            "egress_vs_baseline",
        }, broker
        assert all(map(positive, figures.values())), (broker, figures)
        found = result[broker]
        assert [r["kind"] for r in found["runs"]] == ORDER
        assert all(r["readings"] == READINGS for r in found["runs"]), broker
        assert all(positive(r["readings_per_s"]) for r in found["runs"]), broker
        calls = found["best_egress_split"]["seconds_by_call"]
        assert calls["store.readings_in_log"] > 0 and calls["store.leaves"] > 0, calls
    assert result["kafka"]["best_egress_split"]["seconds_by_call"]["sink.produce"] > 0
    mqtt_calls = result["mqtt"]["best_egress_split"]["seconds_by_call"]
    assert mqtt_calls["publisher.publish"] > 0
    assert all(positive(r["delivered_to_subscriber_seconds"]) for r in result["mqtt"]["runs"])
    assert all(r["confirmed"]["records"] == READINGS for r in result["kafka"]["runs"])
    size = summary["bytes"]
    assert set(size) == {
        "message_bytes_per_reading",
        "leaf_bytes_per_reading",
        "plain_json_bytes_per_reading",
        "jsonld_node_bytes_per_reading",
        "jsonld_vs_plain_json",
        "jsonld_context_bytes_per_document",
    }
    assert all(map(positive, size.values())), size
    assert size["message_bytes_per_reading"] > size["leaf_bytes_per_reading"]
    by_format = result["bytes"]["by_format"]
    assert sum(part["readings"] for part in by_format.values()) == READINGS
    assert len(by_format) == 2  # the meters' CIM XML and the PMUs' JSON
    assert set(summary["how_to_read"]) >= {"rates", "bytes"}
