"""A real `bal up` on BAL_STORE=postgres: end to end, and the faults that matter there.

The same node as on SQLite (its own Mosquitto with the journal, the embedded chain),
with the Shared Customer Database on a throwaway PostgreSQL 15 cluster: readings
published over MQTT are stored once, certified, anchored, proven (`bal verify --rpc`),
audited (`bal audit`), shared through a grant and charted through /v1/series; a node
killed right after its PUBACKs, and PostgreSQL itself crashing under load, lose nothing.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests import postgres_cluster
from tests.integration.bal_process import (
    BalProcess,
    Publisher,
    process_alive,
    wait_until,
)
from tests.integration.test_faults import assert_certified, assert_stored_once, report

postgres_server = postgres_cluster.postgres_server
postgres_url = postgres_cluster.postgres_url


@pytest.fixture
def node_on(tmp_path: Path) -> Iterator[Callable[[str], BalProcess]]:
    """Nodes on a PostgreSQL database (by URL); each cleaned up after the test."""
    made: list[BalProcess] = []

    def make(url: str) -> BalProcess:
        node = BalProcess(
            tmp_path / f"data{len(made)}",
            env={"BAL_STORE": "postgres", "BAL_DATABASE_URL": url},
        )
        made.append(node)
        return node

    try:
        yield make
    finally:
        for node in made:
            node.cleanup()


@pytest.mark.timeout(300)
def test_a_node_on_postgres_certifies_shares_charts_and_passes_its_audit(
    node_on: Callable[[str], BalProcess], postgres_url: str, tmp_path: Path
) -> None:
    node = node_on(postgres_url).start()
    node.add_producer("producer1")
    publisher = Publisher(node.mqtt_port, "producer1", "pg-e2e", inflight=100).open()
    publisher.publish(1000)
    publisher.wait_all_acked(60)
    tally = publisher.tally()
    publisher.disconnect()
    assert_stored_once(node, [tally], "postgres end to end")
    assert_certified(node, [tally], tmp_path)  # bal audit, 3 proofs with bal verify --rpc
    # the node keeps nothing of the store in its data directory
    assert not (node.data_dir / "scd.sqlite3").exists()

    admin = node.admin
    created = httpx.post(
        f"{node.base}/v1/users",
        json={"username": "consumer1", "password": "consumer-pass-1", "role": "consumer"},
        headers=admin,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    token = httpx.post(
        f"{node.base}/oauth/token",
        data={"grant_type": "password", "username": "consumer1", "password": "consumer-pass-1"},
        timeout=10,
    ).json()["access_token"]
    consumer = {"Authorization": f"Bearer {token}"}
    before = httpx.get(f"{node.base}/v1/readings?producer=producer1", headers=consumer)
    assert before.status_code == 403
    producer_token = httpx.post(
        f"{node.base}/oauth/token",
        data={"grant_type": "password", "username": "producer1", "password": "producer-pass-1"},
        timeout=10,
    ).json()["access_token"]
    producer = {"Authorization": f"Bearer {producer_token}"}
    grant = httpx.post(
        f"{node.base}/v1/grants", json={"producer": "producer1"}, headers=consumer, timeout=10
    ).json()
    accepted = httpx.post(
        f"{node.base}/v1/grants/{grant['id']}/accept", headers=producer, timeout=10
    )
    assert accepted.status_code == 200, accepted.text
    page = httpx.get(
        f"{node.base}/v1/readings",
        params={"producer": "producer1", "order": "newest", "limit": 1000},
        headers=consumer,
        timeout=10,
    ).json()
    assert len(page["items"]) == 1000
    ids = [item["id"] for item in page["items"]]
    assert ids == sorted(ids, reverse=True)

    newest = page["items"][0]
    series = httpx.get(
        f"{node.base}/v1/series",
        params={
            "producer": "producer1",
            "device": newest["device"],
            "measurand": newest["measurand"],
            "from": "2000-01-01T00:00:00Z",
            "to": "2100-01-01T00:00:00Z",
            "points": 10,
        },
        headers=consumer,
        timeout=10,
    )
    assert series.status_code == 200, series.text
    assert sum(b["count"] for b in series.json()["buckets"]) == 1  # one reading per device

    audit_page = httpx.get(f"{node.base}/v1/audit", headers=producer, timeout=10).json()
    actions = {entry["action"] for entry in audit_page["items"]}
    assert {"readings.read", "series.read"} <= actions, actions


@pytest.mark.timeout(300)
def test_a_node_on_postgres_killed_right_after_pubacks_loses_nothing(
    node_on: Callable[[str], BalProcess], postgres_url: str
) -> None:
    node = node_on(postgres_url).start()
    node.add_producer("victim")
    publisher = Publisher(node.mqtt_port, "victim", "pg-kill", inflight=100).open()
    mosquitto, pid = node.mosquitto_pid(), node.pid
    assert mosquitto is not None and pid is not None
    publisher.when_acked(3000, lambda: os.kill(pid, signal.SIGKILL))
    publisher.publish(3000)
    publisher.wait_all_acked(120)
    node.kill()  # reaps it
    wait_until(lambda: not process_alive(mosquitto), 10, "the orphaned Mosquitto to exit", 0.02)
    publisher.drop_socket()
    tally = publisher.tally()
    assert len(tally.acked) == 3000
    node.start()
    assert_stored_once(node, [tally], "postgres: node kill -9 after 3000 PUBACKs")
    indices = [index for _, index, _ in node.readings_of("pg-kill-")]
    assert sorted(indices) == list(range(min(indices), min(indices) + len(indices)))


@pytest.mark.timeout(300)
def test_postgres_crashing_under_load_loses_nothing(
    node_on: Callable[[str], BalProcess], tmp_path: Path
) -> None:
    """PostgreSQL stopped in immediate mode (a crash: no checkpoint, WAL recovery at
    start) for 5 s while publishers go on: the node retries, acknowledges nothing it
    could not write, and stores every acknowledged message once."""
    cluster = postgres_cluster.started_cluster()
    try:
        node = node_on(cluster.create_database()).start()
        node.add_producer("steady")
        publisher = Publisher(node.mqtt_port, "steady", "pg-down", inflight=100).open()
        publisher.publish(500, pace=0.002)
        cluster.stop("immediate")
        down_at = time.monotonic()
        publisher.publish(500, pace=0.002)
        time.sleep(max(0.0, 5 - (time.monotonic() - down_at)))
        cluster.start()
        publisher.publish(500, pace=0.002)
        publisher.wait_all_acked(120)
        tally = publisher.tally()
        publisher.disconnect()
        result = assert_stored_once(node, [tally], "postgres crashed for 5 s under load")
        report(f"PostgreSQL down 5 s: {result.acked} acknowledged, all stored once")
        assert node.running, node.log_tail()
        assert_certified(node, [tally], tmp_path)
    finally:
        cluster.remove()
