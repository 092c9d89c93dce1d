"""The benchmarks still run end to end (tiny workloads; their figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import postgres_cluster
from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parents[2]


def test_certify_benchmark_writes_its_report(tmp_path: Path) -> None:
    report = tmp_path / "certify.json"
    workload = "--readings 300 --window 2 --meters 15 --pmus 5 --proofs 50 --anchored-proofs 5"
    subprocess.run(
        [sys.executable, "benchmarks/certify.py", *workload.split(), "--report", str(report)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = json.loads(report.read_text())
    chain = result["chain"]
    # 20 devices send 95 readings a round: 4 rounds in 2 windows of 2 rounds
    assert chain["windows"] == 2 and chain["devices"] == 20
    assert chain["fleet_wide"]["transactions"] == 2
    assert chain["per_device_window"]["transactions"] == 40
    assert result["audit"]["readings"] == result["workload"]["readings"] >= 300
    assert result["audit"]["anchors"] == 2


@pytest.mark.timeout(300)
def test_ingest_benchmark_runs_unsigned_and_signed(tmp_path: Path) -> None:
    require_binary("mosquitto")
    report = tmp_path / "ingest.json"
    workload = "--meters 3 --pmus 2 --rounds 2"
    subprocess.run(
        [sys.executable, "benchmarks/ingest.py", *workload.split(), "--report", str(report)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=280,
    )
    result = json.loads(report.read_text())
    # 5 devices, 2 rounds: 10 messages; a meter gives 2 readings a round, a PMU 13
    for run in ("bal_end_to_end", "bal_own_mosquitto", "bal_own_mosquitto_signed"):
        assert (result[run]["messages"], result[run]["readings"]) == (10, 64), run
        assert result[run]["rejections"] == 0, run
    assert result["ratios"]["signed_vs_unsigned_own_mosquitto"] > 0


@pytest.mark.timeout(600)
def test_storage_benchmark_writes_its_report(tmp_path: Path) -> None:
    require_binary("mosquitto")
    postgres_cluster.require_bindir()
    report = tmp_path / "storage.json"
    workload = (
        "--rounds 3 --meters 10 --pmus 5 --append-readings 2000 --batch-rounds 2 --proofs 20"
        " --readings 20000 --days 2 --repeats 3 --profile-top 5"
    )
    subprocess.run(
        [sys.executable, "benchmarks/storage.py", *workload.split(), "--report", str(report)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=540,
    )
    result = json.loads(report.read_text())
    assert result["machine"]["cpus"] and result["machine"]["platform"]
    assert result["engines"]["postgres"]["settings"]["fsync"] == "on"
    ingest = result["ingest"]
    for store in ("sqlite", "postgres"):
        # 15 devices send 85 readings a round: 3 rounds
        assert ingest[store]["messages"] == ingest["workload"]["messages"] == 45
        assert ingest[store]["readings"] == 255
        assert result["audit"][store]["readings"] == result["append"][store]["readings"] >= 2000
        assert result["proofs"][store]["proofs"] == 20
        queries = result["queries"][store]
        assert queries["fill"]["readings"] == 20_000
        assert queries["device_day"]["readings_per_query"] == 8640
        assert queries["device_hour"]["readings_per_query"] == 360
        for kind in ("device_day", "device_hour"):
            for name in ("readings", "series", "baseline_plain_table_rows"):
                assert queries[kind][name]["p95_ms"] > 0
    assert "ratio_postgres_vs_sqlite" in ingest


@pytest.mark.timeout(300)
def test_scale_benchmark_runs_nodes_the_sequencer_and_a_takeover(tmp_path: Path) -> None:
    require_binary("mosquitto")
    postgres_cluster.require_bindir()
    report = tmp_path / "scale.json"
    workload = (
        "--nodes 2 --messages 300 --seconds 2 --drain 3 --takeovers 1 --sequencer-leaves 1000"
    )
    subprocess.run(
        [sys.executable, "benchmarks/scale.py", *workload.split(), "--report", str(report)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=280,
    )
    result = json.loads(report.read_text())
    assert not result["errors"], result["errors"]
    assert result["raw_mosquitto_msgs_per_s"] > 0
    ingest = result["nodes"]["2"]["ingest"]
    assert ingest["complete"] and ingest["readings"] == 300
    assert result["nodes"]["2"]["ratio_to_raw"] > 0
    for store in ("postgres", "sqlite"):
        assert result["sequencer"][store]["leaves"] >= 1000
    assert len(result["takeover_s"]["runs"]) == 1
    assert result["nodes"]["2"]["receipt_latency_ms"]["n"] > 0
