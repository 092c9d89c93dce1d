"""Several BAL nodes as one (ARCHITECTURE §8): three `bal up` processes on one
PostgreSQL, one Mosquitto (ingest split by the MQTT 5 shared subscription
$share/bal/platone/#) and one JSON-RPC chain (ganache).

Publishers send unique QoS 1 readings while the leader (the sequencer, checkpointers,
anchorers) is killed with SIGKILL, then the next leader too; each comes back under its
name, as a StatefulSet's pod would. Every acknowledged reading is stored once, the
log's indices are contiguous, `bal audit` passes against the chain and proofs verify.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from platone_bal.cli import app
from tests import postgres_cluster
from tests.integration.bal_process import (
    BalProcess,
    Publisher,
    stop_publishers,
    wait_until,
)
from tests.integration.ganache import PASSPHRASE, Ganache, funded_ganache
from tests.integration.mosquitto import Mosquitto
from tests.integration.test_faults import assert_certified, assert_stored_once, report

postgres_server = postgres_cluster.postgres_server
postgres_url = postgres_cluster.postgres_url

NODES = 3
LEASE = 3.0
PRODUCERS = ("north", "south")
SERVICE_PASSWORD = "bal-service-password"


class Cluster:
    def __init__(self, nodes: list[BalProcess], broker: Mosquitto, chain: Ganache) -> None:
        self.nodes, self.broker, self.chain = nodes, broker, chain

    def leaders(self) -> list[BalProcess]:
        found = []
        for node in self.nodes:
            try:
                if node.running() and node.metric("bal_leader") == 1:
                    found.append(node)
            except httpx.HTTPError:
                continue
        return found

    def wait_for_one_leader(self, timeout: float = 30.0) -> BalProcess:
        wait_until(lambda: len(self.leaders()) == 1, timeout, "exactly one leader", 0.05)
        return self.leaders()[0]


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    broker = Mosquitto(tmp_path / "mosquitto", {"bal-service": SERVICE_PASSWORD}).start()
    chain = funded_ganache(tmp_path, tmp_path / "data0")
    env = {
        "BAL_STORE": "postgres",
        "BAL_DATABASE_URL": postgres_url,
        "BAL_BROKER": "mosquitto",
        "BAL_MQTT_URL": broker.url,
        "BAL_MQTT_USERNAME": "bal-service",
        "BAL_MQTT_PASSWORD": SERVICE_PASSWORD,
        "BAL_MQTT_SHARED_GROUP": "bal",
        "BAL_CHAIN": "rpc",
        "BAL_CHAIN_URL": chain.url,
        "BAL_KEY_PASSPHRASE": PASSPHRASE,
        "BAL_LEADER_LEASE": str(LEASE),
    }
    nodes = [
        BalProcess(tmp_path / f"data{n}", env={**env, "BAL_NODE_NAME": f"node{n}"})
        for n in range(NODES)
    ]
    try:
        # the first node's keys (funded on ganache) go into the store; the contracts too
        cli_env = {key: value for key, value in nodes[0].env.items() if key.startswith("BAL_")}
        deployed = CliRunner().invoke(app, ["chain", "deploy", "--rpc", chain.url], env=cli_env)
        assert deployed.exit_code == 0, deployed.output
        for node in nodes:
            node.start()
        yield Cluster(nodes, broker, chain)
    finally:
        stop_publishers()
        for node in nodes:
            node.cleanup()
        broker.stop()
        chain.stop()


def add_producer(cluster: Cluster, name: str) -> None:
    """Create a producer on one node; wait until the broker lets it publish and a node
    stores what it sends."""
    node = cluster.nodes[1]
    created = httpx.post(
        f"{node.base}/v1/users",
        json={"username": name, "password": "producer-pass-1", "role": "producer"},
        headers=node.admin,
        timeout=20,
    )
    assert created.status_code == 201, created.text
    probe = Publisher(cluster.broker.port, name, f"probe-{name}", password="producer-pass-1")
    deadline = time.monotonic() + 30
    while True:
        try:
            probe.open(5)
            break
        except (ConnectionError, OSError, TimeoutError, RuntimeError):
            assert time.monotonic() < deadline, f"{name} cannot connect"
            time.sleep(0.2)
    probe.publish(1)
    probe.wait_all_acked(20)
    wait_until(lambda: node.stored_counts(f"probe-{name}-"), 30, f"{name}'s probe stored")
    probe.disconnect()


@pytest.mark.timeout(420)
def test_three_nodes_lose_nothing_when_two_leaders_are_killed_in_turn(cluster: Cluster) -> None:
    cluster.wait_for_one_leader()
    for name in PRODUCERS:
        add_producer(cluster, name)
    publishers = [
        Publisher(
            cluster.broker.port, name, f"mn-{name}", password="producer-pass-1", inflight=50
        ).open()
        for name in PRODUCERS
    ]
    threads = [
        threading.Thread(target=p.publish_for, args=(120.0,), kwargs={"batch": 20, "pace": 0.002})
        for p in publishers
    ]
    for thread in threads:
        thread.start()
    takeovers = []
    for _ in range(2):
        time.sleep(4)
        leader = cluster.wait_for_one_leader()
        leader.kill()  # SIGKILL: no release, its lease runs out
        killed = time.monotonic()
        wait_until(
            lambda leader=leader: any(n is not leader for n in cluster.leaders()),
            LEASE * 4,
            "another node to lead",
            0.05,
        )
        takeovers.append(time.monotonic() - killed)
        time.sleep(2)
        leader.start()  # back under its name: its broker session's share is delivered
    for publisher in publishers:
        publisher.stop()
    for thread in threads:
        thread.join(30)
    for publisher in publishers:
        publisher.wait_all_acked(60)
    report(f"takeovers after SIGKILL: {', '.join(f'{t:.1f} s' for t in takeovers)}")
    assert all(t <= LEASE * 2 for t in takeovers), takeovers
    tallies = [publisher.tally() for publisher in publishers]
    node = cluster.nodes[0]
    assert_stored_once(node, tallies, "3 nodes, two leaders killed")
    wait_until(
        lambda: node.query("SELECT count(*) FROM log_queue")[0][0] == 0,
        30,
        "the queue to drain",
    )
    count, top, distinct = node.query(
        "SELECT count(*), max(idx), count(DISTINCT idx) FROM readings WHERE log = 'bal-main'"
    )[0]
    assert count == distinct == top + 1, (count, top, distinct)  # contiguous, no duplicate
    # every node took a share of the ingest (a restarted node too, after its restart)
    taken = {n.data_dir.name: n.metric("bal_ingest_readings_total") for n in cluster.nodes}
    assert all(count > 0 for count in taken.values()), taken
    report(f"readings taken per node since its last start: {taken}")
    assert_certified(node, tallies, node.data_dir.parent, rpc_url=cluster.chain.url)
    # one token (issued by node0) is honoured by every node: they share the token key
    for other in cluster.nodes:
        answer = httpx.get(f"{other.base}/v1/readings?limit=1", headers=node.admin, timeout=10)
        assert answer.status_code == 200, answer.text
