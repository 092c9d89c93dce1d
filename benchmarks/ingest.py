"""Ingest throughput through a real Mosquitto, against the raw broker in the same run.

1. baseline: the simulated fleet's payloads published at full speed (QoS 1) to Mosquitto
   and counted by a bare paho subscriber: what the broker and client can move here;
2. BAL: the same payloads through the same broker into a BAL node (BAL_BROKER=mosquitto),
   timed until every reading is committed in the SQLite store;
3. BAL on its defaults: the same payloads into a node running its own Mosquitto (saved
   after every change, as `bal up` runs it), timed the same way;
4. signed: the same payloads, each wrapped in a Light Node envelope signed by its
   device's key (ARCHITECTURE §8), into a node on its defaults whose DeviceRegistry
   holds every device's key (registered through the API before the run), timed the
   same way; compared with 3 (unsigned, whose every reading is also checked against
   the registry: a device with a key must sign).

Writes a JSON report (default benchmarks/results/ingest.json) with both rates and
their ratio. Run: `make bench` or `.venv/bin/python benchmarks/ingest.py --rounds 50`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account
from eth_account.signers.local import LocalAccount
from tests.integration.mosquitto import Mosquitto
from tests.integration.nodes import NodeThread

from platone_bal.simulate import Fleet, connect, signed_envelope

PRODUCER = ("producer1", "secret-pass-1")
SERVICE = ("bal-service", "service-pass-1")


def payloads(fleet: Fleet, rounds: int) -> list[tuple[str, bytes]]:
    start = datetime.now(UTC) - timedelta(hours=1)
    return [item for n in range(rounds) for item in fleet.round(start + timedelta(seconds=n))]


def _publisher(url: str, messages: list[tuple[str, bytes]], ready: Any, go: Any) -> None:
    client = connect(url, *PRODUCER, inflight=1000)
    ready.set()
    go.wait()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def publish_all(url: str, messages: list[tuple[str, bytes]]) -> float:
    """Publish at full speed with QoS 1 from a separate process, as devices would.

    Returns perf_counter() at the moment publishing began.
    """
    context = multiprocessing.get_context("spawn")
    ready, go = context.Event(), context.Event()
    process = context.Process(target=_publisher, args=(url, messages, ready, go))
    process.start()
    ready.wait(30)
    started = time.perf_counter()
    go.set()
    PUBLISHERS.append(process)
    return started


PUBLISHERS: list[Any] = []


def baseline(broker: Mosquitto, messages: list[tuple[str, bytes]]) -> dict[str, float]:
    """Raw Mosquitto -> paho delivery of the same payloads."""
    received = 0
    done = threading.Event()
    lock = threading.Lock()
    subscriber = connect(broker.url, *SERVICE, client_id="bench-baseline")

    def on_message(*_: object) -> None:
        nonlocal received
        with lock:
            received += 1
            if received == len(messages):
                done.set()

    subscribed = threading.Event()
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *_: subscribed.set()
    subscriber.subscribe("platone/#", qos=1)
    subscribed.wait(10)
    started = publish_all(broker.url, messages)
    done.wait(300)
    elapsed = time.perf_counter() - started
    subscriber.disconnect()
    subscriber.loop_stop()
    return {"messages": received, "seconds": elapsed, "messages_per_s": received / elapsed}


def through_bal(
    broker: Mosquitto, messages: list[tuple[str, bytes]], workdir: Path
) -> dict[str, float]:
    """The same payloads into a BAL node until every reading is committed."""
    node = broker.bal_node(workdir / "bal", mqtt_client_id="bench-bal")
    return _timed(node, broker.url, messages, workdir / "bal")


def through_own_broker(messages: list[tuple[str, bytes]], workdir: Path) -> dict[str, float]:
    """The same payloads into a node on its defaults: its own Mosquitto."""
    node = NodeThread(workdir / "bal-own")
    url = f"mqtt://127.0.0.1:{node.settings.mqtt_port}"
    return _timed(node, url, messages, workdir / "bal-own")


def through_own_broker_signed(
    messages: list[tuple[str, bytes]], devices: list[str], workdir: Path
) -> dict[str, float]:
    """The payloads signed by their devices' keys, into a node whose registry has them."""
    accounts: dict[str, LocalAccount] = {device: Account.create() for device in devices}
    signed = [
        (
            topic,
            signed_envelope(payload, topic.rsplit("/", 1)[1], accounts[topic.rsplit("/", 1)[1]]),
        )
        for topic, payload in messages
    ]
    node = NodeThread(workdir / "bal-signed")
    url = f"mqtt://127.0.0.1:{node.settings.mqtt_port}"

    def register_keys() -> None:
        producer = node.token(*PRODUCER)
        for device, account in accounts.items():
            kind = "meter" if device.startswith("meter") else "pmu"
            body = {"device_id": device, "kind": kind, "public_key": account.address}
            node.http.post("/v1/devices", json=body, headers=producer).raise_for_status()
            node.http.post(
                f"/v1/devices/{device}/key", params={"producer": PRODUCER[0]}, headers=node.token()
            ).raise_for_status()
        keys = node.node.device_keys
        assert keys is not None
        deadline = time.monotonic() + 30
        while not all(keys.must_sign(PRODUCER[0], device) for device in devices):
            if time.monotonic() > deadline:
                raise TimeoutError("the node did not see the registered keys")
            time.sleep(0.1)

    return _timed(node, url, signed, workdir / "bal-signed", before=register_keys)


def _timed(
    node: NodeThread,
    url: str,
    messages: list[tuple[str, bytes]],
    data_dir: Path,
    before: Any = None,
) -> dict[str, float]:
    with node:
        node.add_user(*PRODUCER)
        if before is not None:
            before()
        database = sqlite3.connect(data_dir / "scd.sqlite3")

        def counts() -> tuple[int, int]:
            row = database.execute(
                "SELECT COUNT(*), COALESCE(SUM(readings), 0) FROM messages"
            ).fetchone()
            return int(row[0]), int(row[1])

        started = publish_all(url, messages)
        while counts()[0] < len(messages):
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"only {counts()} stored")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        stored, readings = counts()
        (rejections,) = database.execute("SELECT COUNT(*) FROM rejections").fetchone()
        database.close()
    return {
        "messages": stored,
        "readings": readings,
        "rejections": rejections,
        "seconds": elapsed,
        "messages_per_s": stored / elapsed,
        "readings_per_s": readings / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=150)
    parser.add_argument("--pmus", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--report", type=Path, default=Path("benchmarks/results/ingest.json"))
    args = parser.parse_args()
    fleet = Fleet(username=PRODUCER[0], meters=args.meters, pmus=args.pmus)
    messages = payloads(fleet, args.rounds)
    with tempfile.TemporaryDirectory(prefix="bal-bench-") as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir / "mosquitto", dict([SERVICE, PRODUCER])).start()
        try:
            raw = baseline(broker, messages)
            bal = through_bal(broker, messages, workdir)
            own = through_own_broker(messages, workdir)
            signed = through_own_broker_signed(messages, fleet.devices(), workdir)
        finally:
            for process in PUBLISHERS:
                process.join(60)
            broker.cleanup()
    report = {
        "benchmark": "ingest",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "workload": {
            "devices": len(fleet.devices()),
            "meters": args.meters,
            "pmus": args.pmus,
            "rounds": args.rounds,
            "messages": len(messages),
            "qos": 1,
        },
        "baseline_mosquitto_to_paho": raw,
        "bal_end_to_end": bal,
        "bal_own_mosquitto": own,
        "bal_own_mosquitto_signed": signed,
        "ratios": {
            "signed_vs_unsigned_own_mosquitto": signed["messages_per_s"] / own["messages_per_s"],
            "bal_messages_vs_raw_delivery": bal["messages_per_s"] / raw["messages_per_s"],
            "bal_own_mosquitto_vs_raw_delivery": own["messages_per_s"] / raw["messages_per_s"],
        },
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
