"""The benchmarks still run end to end (tiny workloads; their figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
