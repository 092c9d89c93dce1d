"""`bal export`: a producer's readings (a device, a window) as JSON-LD, CSV or Parquet,
every reading once, each with its place in the log and its proof's link."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyld import jsonld
from typer.testing import CliRunner

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.cli import app
from platone_bal.domain.semantic import SAREF
from platone_bal.services import export as export_module
from tests.contract.builders import add_user, pmu_message, save

runner = CliRunner()
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with 30 readings of alice's pmu-1 (one a minute) and 10 of pmu-2."""
    monkeypatch.setenv("BAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(export_module, "PAGE", 7)  # several pages
    store = SqliteStore(tmp_path / "data" / "scd.sqlite3")
    alice = add_user(store, "alice")
    save(store, [
        pmu_message(alice, device, T0 + timedelta(minutes=n), [("voltage", f"{230 + n}.5")],
                    received=T0 + timedelta(minutes=n))
        for device, count in (("pmu-1", 30), ("pmu-2", 10)) for n in range(count)
    ])  # fmt: skip
    store.close()
    return tmp_path / "data"


def run(*args: str) -> str:
    result = runner.invoke(app, ["export", "--producer", "alice", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_each_format_holds_the_window_once_with_proof_links(data_dir: Path, tmp_path: Path) -> None:
    window = ["--device", "pmu-1", "--from", "2026-03-01T00:10:00Z", "--to", "2026-03-01T00:20:00Z"]
    out = tmp_path / "alice.jsonld"
    assert "10 readings written" in run(*window, "--out", str(out))
    expanded = jsonld.expand(json.loads(out.read_text()))
    assert len(expanded) == 10
    assert {node["@type"][0] for node in expanded} == {SAREF + "Measurement"}
    values = sorted(node[SAREF + "hasValue"][0]["@value"] for node in expanded)
    assert values == [f"{230 + n}.5" for n in range(10, 20)]
    proofs = {node["urn:platone-bal:vocab:proof"][0]["@id"] for node in expanded}
    assert all(p.startswith("http://127.0.0.1:8080/v1/readings/") for p in proofs)
    assert len(proofs) == 10

    table = tmp_path / "alice.csv"
    run("--format", "csv", "--out", str(table), "--base-url", "https://bal.dso.example/")
    with table.open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 40  # both devices, every time
    assert len({(row["log"], row["index"]) for row in rows}) == 40
    assert rows[0]["proof"] == f"https://bal.dso.example/v1/readings/{rows[0]['id']}/proof"

    columnar = tmp_path / "alice.parquet"
    run("--format", "parquet", "--device", "pmu-2", "--out", str(columnar))
    read = pq.read_table(columnar)
    assert read.num_rows == 10
    assert set(read.column("device").to_pylist()) == {"pmu-2"}
    assert sorted(read.column("index").to_pylist()) == sorted(
        int(row["index"]) for row in rows if row["device"] == "pmu-2"
    )


def test_nothing_matching_still_writes_a_valid_empty_file(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "none.jsonld"
    assert "0 readings written" in run("--device", "nope", "--out", str(out))
    assert jsonld.expand(json.loads(out.read_text())) == []
    bad = runner.invoke(app, ["export", "--producer", "alice", "--format", "xml", "--out", "x"])
    assert bad.exit_code != 0
