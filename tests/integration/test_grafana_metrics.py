"""The Grafana dashboards against real parts: every metric a panel of deploy/grafana/
queries is exported by a running `bal up` once it has taken readings, and every query of
the producer data dashboard runs, as the read-only role that deploy/grafana/reader-role.sh
makes, on a real PostgreSQL store with readings in it, and returns rows.

Grafana and Prometheus themselves cannot run here (no Docker, no network): what they
would do with the files is checked offline in tests/unit/test_grafana_dashboards.py.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from platone_bal.adapters.postgres import PostgresStore
from platone_bal.domain.devices import DeviceKind
from platone_bal.domain.setpoints import SetPointRequest, SetPointStatus
from platone_bal.services.recorder import Recorder
from platone_bal.services.setpoints import SetPointService
from tests import postgres_cluster
from tests.conftest import SAMPLE_XML, require_binary
from tests.contract.builders import add_user, make_device, pmu_message, rejected_message
from tests.integration.bal_process import (
    PRODUCER_PASSWORD,
    BalProcess,
    connect_client,
    wait_until,
)
from tests.unit.test_grafana_dashboards import (
    GRAFANA,
    PROMETHEUS_MADE,
    prometheus_expressions,
    promql_metric_names,
    sql_queries,
)

postgres_server = postgres_cluster.postgres_server
postgres_url = postgres_cluster.postgres_url

pytestmark = pytest.mark.integration

LOG = "bal-main"


# --- the operations dashboard against a running node ------------------------------------


@pytest.fixture
def node(tmp_path: Path) -> Iterator[BalProcess]:
    running = BalProcess(tmp_path / "data", anchor_interval=1.0).start()
    try:
        yield running
    finally:
        running.cleanup()


def scrape(node: BalProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    """GET /metrics as Prometheus would (no credentials): sample name -> (labels, value)."""
    answer = httpx.get(f"{node.base}/metrics", timeout=10)
    answer.raise_for_status()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(
    samples: Mapping[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    """The sum of a sample's values whose labels include `labels` (0 if none)."""
    return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())


def test_every_metric_a_panel_queries_is_exported_by_a_running_node(node: BalProcess) -> None:
    queried = {
        name: where
        for where, expr in prometheus_expressions()
        for name in promql_metric_names(expr)
    }
    assert len(queried) >= 20  # the parser found the panels' metrics, not nothing

    # readings over MQTT (the probe of add_producer, then a CIM payload), a data read over
    # HTTP, and a set point issued: what moves the series the panels show
    node.add_producer("producer1")
    client = connect_client(node.mqtt_port, "producer1", PRODUCER_PASSWORD)
    try:
        client.publish("platone/producer1/dev", SAMPLE_XML)
        client.wait_published(10)
    finally:
        client.close()
    httpx.get(f"{node.base}/v1/readings", headers=node.admin, timeout=10).raise_for_status()
    created = httpx.post(
        f"{node.base}/v1/devices",
        json={"device_id": "ln-1", "kind": "light-node", "producer": "producer1"},
        headers=node.admin,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    now = datetime.now(UTC)
    issued = httpx.post(
        f"{node.base}/v1/setpoints",
        json={"producer": "producer1", "device": "ln-1", "measurand": "activePowerLimit",
              "value": "3.5", "unit": "kW", "start": now.isoformat(),
              "end": (now + timedelta(hours=1)).isoformat()},
        headers=node.admin,
        timeout=10,
    )  # fmt: skip
    assert issued.status_code == 201, issued.text

    def certified_and_out() -> bool:
        samples = scrape(node)
        size = value(samples, "bal_log_size", log=LOG)
        return (
            size > 1
            and value(samples, "bal_anchor_size", log=LOG) == size
            and value(samples, "bal_egress_position", log=LOG) == size
            and value(samples, "bal_setpoints_total", status=SetPointStatus.DELIVERED) == 1
        )

    wait_until(certified_and_out, 20, f"readings anchored and out\n{node.log_tail()}", 0.2)
    samples = scrape(node)
    missing = {
        name: where
        for name, where in queried.items()
        if name not in samples and name not in PROMETHEUS_MADE
    }
    assert missing == {}, f"queried by a panel, not exported by the node: {missing}"
    # what the panels make of them on a node alone: it leads, nothing lags, nothing failed
    assert value(samples, "bal_leader") == 1
    assert value(samples, "bal_anchor_lag_readings", log=LOG) == 0
    assert value(samples, "bal_anchor_failures_total") == 0
    assert value(samples, "bal_ingest_messages_total", outcome="accepted") >= 2
    assert value(samples, "bal_setpoints_total", status=SetPointStatus.ISSUED) == 1
    assert value(samples, "bal_http_request_seconds_count", route="/v1/readings") >= 1


# --- the producer data dashboard's SQL on a real store ----------------------------------


def seconds(interval: str) -> int:
    """Grafana's interval text ('1h', 1m, 30s) in seconds."""
    text = interval.strip().strip("'\"")
    return int(text[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[text[-1]]


def grafana_sql(
    sql: str,
    *,
    start: datetime,
    end: datetime,
    interval: str,
    variables: Mapping[str, str | Sequence[str]],
) -> str:
    """The SQL Grafana's PostgreSQL data source sends for `sql`: template variables as it
    formats them (a single value with quotes doubled, a multi-value one as a list of
    quoted literals), then its macros as it expands them."""
    for name in sorted(variables, key=len, reverse=True):
        given = variables[name]
        if isinstance(given, str):
            text = given.replace("'", "''")
        else:
            text = ",".join("'" + item.replace("'", "''") + "'" for item in given)
        sql = sql.replace("${" + name + "}", text).replace("$" + name, text)
    sql = sql.replace("$__interval", interval)
    window = f"BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'"
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m[1].strip()} {window}", sql)

    def group(match: re.Match[str]) -> str:
        step = seconds(match[3])
        alias = ' AS "time"' if match[1] == "Alias" else ""
        return f"floor(extract(epoch FROM {match[2].strip()})/{step})*{step}{alias}"

    sql = re.sub(r"\$__timeGroup(Alias)?\(([^,]+),([^)]+)\)", group, sql)
    assert "$" not in sql, f"a macro or variable this test does not expand: {sql}"
    return sql


def make_reader_role(url: str) -> dict[str, str]:
    """Run deploy/grafana/reader-role.sh (psql, as compose's one-shot runs it) on the
    database at `url`; the connection settings of its role bal_grafana."""
    require_binary("psql")
    info = psycopg.conninfo.conninfo_to_dict(url)
    env = {
        **os.environ,
        "PGHOST": str(info["host"]),
        "PGPORT": str(info["port"]),
        "PGUSER": str(info["user"]),
        "PGDATABASE": str(info["dbname"]),
        "POSTGRES_PASSWORD": str(info.get("password") or "unused"),
        "GRAFANA_DB_PASSWORD": "grafana-reader-pass",
    }
    env.pop("PGPASSWORD", None)
    done = subprocess.run(
        ["sh", str(GRAFANA / "reader-role.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "role bal_grafana ready" in done.stdout
    return {
        "host": str(info["host"]),
        "port": str(info["port"]),
        "dbname": str(info["dbname"]),
        "user": "bal_grafana",
        "password": "grafana-reader-pass",
    }


def fill(store: PostgresStore, now: datetime) -> None:
    """Two producers' readings (PMU, two devices, two measurands, over the last hours),
    a rejected payload and a set point: what the data dashboard's panels read."""
    alice, bob = add_user(store, "alice"), add_user(store, "bob")
    records = [
        pmu_message(
            producer,
            device,
            now - timedelta(minutes=minutes),
            [("V", f"{230 + minutes % 7}.5"), ("I", str(minutes % 11))],
            received=now - timedelta(minutes=minutes - 1),
        )
        for producer in (alice, bob)
        for device in ("pmu-1", "pmu-2")
        for minutes in range(5, 300, 25)
    ]
    records.append(
        rejected_message("alice", b"not a payload", ["undecodable payload"], received=now)
    )
    Recorder(store).save(records, LOG)
    store.add_device(make_device("alice", "ln-1", DeviceKind.LIGHT_NODE))
    request = SetPointRequest(
        "alice", "ln-1", "activePowerLimit", "3.5", "kW", now, now + timedelta(hours=1)
    )
    SetPointService(store, lambda: now).issue(request, "admin")


def test_every_query_of_the_data_dashboard_runs_as_its_role_and_returns_rows(
    postgres_url: str,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    store = PostgresStore(postgres_url, max_size=2)
    try:
        fill(store, now)
    finally:
        store.close()
    reader = make_reader_role(postgres_url)
    queries = dict(sql_queries())
    (producers_query,) = [sql for where, sql in queries.items() if where.endswith("/$producer")]
    (devices_query,) = [sql for where, sql in queries.items() if where.endswith("/$device")]
    window = {"start": now - timedelta(hours=24), "end": now + timedelta(minutes=1)}
    with psycopg.connect(**reader, autocommit=True) as grafana:  # type: ignore[arg-type]
        producers = [row[0] for row in grafana.execute(producers_query.encode()).fetchall()]
        assert producers == ["alice", "bob"]
        devices_sql = grafana_sql(devices_query, interval="1m", variables={"producer": "alice"},
                                  **window)  # fmt: skip
        devices = [row[0] for row in grafana.execute(devices_sql.encode()).fetchall()]
        assert devices == ["pmu-1", "pmu-2"]
        variables = {"producer": "alice", "device": devices}
        panels = {where: sql for where, sql in queries.items() if "/$" not in where}
        assert len(panels) >= 8
        for where, sql in panels.items():
            text = grafana_sql(sql, interval="1m", variables=variables, **window)
            rows = grafana.execute(text.encode()).fetchall()
            assert rows, f"{where} returned nothing:\n{text}"
            assert all(any(cell is not None for cell in row) for row in rows), where
        # the role reads what the dashboard shows and nothing else, and writes nothing:
        # its sessions are read-only, and without that it still has no right to write
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            grafana.execute(b"SELECT password_hash FROM users")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            grafana.execute(b"DELETE FROM readings")
        grafana.execute(b"SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            grafana.execute(b"DELETE FROM readings")
