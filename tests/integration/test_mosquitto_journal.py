"""The journal plugin inside a real Mosquitto 2.0: every publish on `platone/...` is on
record before its PUBACK, segments close at a stop and when full, a segment left open
by a killed broker is closed by the node, and a record that cannot be written refuses
the publish instead of acknowledging it."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from platone_bal.adapters.mosquitto_plugins import build_plugin
from platone_bal.adapters.mosquitto_plugins.journal import (
    CLOSED,
    OPEN,
    MosquittoJournal,
    read_segment,
)
from tests.conftest import free_port, require_binary
from tests.integration.nodes import wait_for


@dataclass
class Broker:
    process: subprocess.Popen[bytes]
    port: int
    journal: MosquittoJournal

    def open_segments(self) -> list[Path]:
        return sorted(self.journal.directory.glob(f"*{OPEN}"))


@pytest.fixture
def start_broker(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    mosquitto = require_binary("mosquitto")
    plugin = build_plugin("bal_journal", tmp_path)
    started: list[Broker] = []

    def start(segment_bytes: int = 64 * 1024 * 1024) -> Broker:
        journal = MosquittoJournal(tmp_path / "journal")
        journal.prepare()
        port = free_port()
        conf = tmp_path / "mosquitto.conf"
        conf.write_text(
            f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
            f"listener {port} 127.0.0.1\nallow_anonymous true\n"
            f"plugin {plugin}\nplugin_opt_dir {journal.directory}\n"
            f"plugin_opt_segment_bytes {segment_bytes}\n"
        )
        log = (tmp_path / "mosquitto.log").open("ab")
        process = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=log, stderr=log)
        broker = Broker(process, port, journal)
        started.append(broker)
        wait_for(lambda: broker.open_segments() != [], what="the plugin's first segment")
        return broker

    yield start
    for broker in started:
        if broker.process.poll() is None:
            broker.process.kill()
            broker.process.wait()


@contextmanager
def publisher(port: int) -> Iterator[mqtt.Client]:
    """A connected client, its network loop running, disconnected after the block."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="journal-test")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        yield client
    finally:
        client.loop_stop()
        client.disconnect()


def publish_acked(client: mqtt.Client, topic: str, payload: bytes) -> bool:
    """Publish at QoS 1; True once the PUBACK came, False if none came in 5 s."""
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(5)
    return info.is_published()


def test_each_ingest_publish_is_on_record_when_acknowledged(
    start_broker: Callable[..., Broker],
) -> None:
    broker = start_broker()
    with publisher(broker.port) as client:
        for number in range(5):
            assert publish_acked(client, f"platone/alice/meter-{number}", b"reading %d" % number)
        assert publish_acked(client, "elsewhere/alice", b"not for ingest")
        [segment] = broker.open_segments()
        # read while Mosquitto still runs: the records are there before any save or stop
        records = read_segment(segment.read_bytes())
    assert [(r.topic, r.payload, r.qos) for r in records] == [
        (f"platone/alice/meter-{n}", b"reading %d" % n, 1) for n in range(5)
    ]
    broker.process.send_signal(signal.SIGTERM)
    broker.process.wait(10)
    assert broker.open_segments() == []
    assert broker.journal.closed_segments() == [segment.with_suffix(CLOSED).name]


def test_full_segments_are_closed_for_replay_while_the_broker_runs(
    start_broker: Callable[..., Broker],
) -> None:
    broker = start_broker(segment_bytes=1)
    with publisher(broker.port) as client:
        for number in range(3):
            assert publish_acked(client, "platone/bob", b"payload %d" % number)
    closed = broker.journal.closed_segments()
    assert len(closed) == 3
    payloads = [record.payload for name in closed for record in broker.journal.records(name)]
    assert payloads == [b"payload 0", b"payload 1", b"payload 2"]


def test_a_killed_broker_leaves_its_segment_open_and_the_node_closes_it(
    start_broker: Callable[..., Broker],
) -> None:
    broker = start_broker()
    with publisher(broker.port) as client:
        assert publish_acked(client, "platone/carol/pmu", b'{"readings":[]}')
    broker.process.kill()
    broker.process.wait()
    assert len(broker.open_segments()) == 1
    assert broker.journal.close_orphans() == 1
    [segment] = broker.journal.closed_segments()
    assert [r.payload for r in broker.journal.records(segment)] == [b'{"readings":[]}']


def test_a_record_that_cannot_be_written_is_not_acknowledged(
    start_broker: Callable[..., Broker],
) -> None:
    """Fail closed: with the journal gone, the publish is refused (Mosquitto drops the
    connection without a PUBACK) and the broker itself keeps running."""
    broker = start_broker(segment_bytes=1)
    with publisher(broker.port) as client:
        # fills the first segment: the next publish needs a new one
        assert publish_acked(client, "platone/dave", b"recorded")
    shutil.rmtree(broker.journal.directory)
    with publisher(broker.port) as client:
        assert not publish_acked(client, "platone/dave", b"nowhere to record it")
    assert broker.process.poll() is None
    broker.journal.prepare()
    with publisher(broker.port) as client:
        assert publish_acked(client, "platone/dave", b"recorded again")
