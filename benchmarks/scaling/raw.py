"""The baseline: what a plain Mosquitto (password file, no ACL, no TLS) and a bare paho
subscriber at QoS 1 move on this machine, with the same payloads and publisher
processes as the BAL runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from tests.integration.mosquitto import Mosquitto

from benchmarks.scaling.publish import Job, Login, Publishers, split, tally
from platone_bal.simulate import connect

SERVICE = ("bal-service", "service-pass-1")
PASSWORD = "producer-pass-1"
DELIVERY_TIMEOUT = 300.0


AUTOSAVE = "autosave_on_changes true\nautosave_interval 1\n"
"""The persistence of the stack's broker (StackBroker): saved after every change."""


def raw_rate(
    workdir: Path, messages: int, publishers: int, label: str, *, autosave: bool = False
) -> dict[str, Any]:
    """Messages per second from the first publish to the last delivery; with `autosave`,
    the broker saves its state after every change, as the stack's does."""
    names = [f"raw{n}" for n in range(1, publishers + 1)]
    broker = Mosquitto(
        workdir / f"mosquitto-{label}", {SERVICE[0]: SERVICE[1], **dict.fromkeys(names, PASSWORD)},
        dynsec=False,
    )  # fmt: skip
    if autosave:
        with (broker.workdir / "mosquitto.conf").open("a") as conf:
            conf.write(AUTOSAVE)
    broker.start()
    received = 0
    done = threading.Event()
    lock = threading.Lock()

    def on_message(*_: object) -> None:
        nonlocal received
        with lock:
            received += 1
            if received >= messages:
                done.set()

    try:
        subscriber = connect(broker.url, *SERVICE, client_id=f"bench-raw-{label}", inflight=1000)
        subscribed = threading.Event()
        subscriber.on_message = on_message
        subscriber.on_subscribe = lambda *_: subscribed.set()
        subscriber.subscribe("platone/#", qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("the raw subscriber was not subscribed")
        jobs = [
            Job(Login(broker.url, name, PASSWORD), f"{name}-{label}", count)
            for name, count in zip(names, split(messages, publishers), strict=True)
        ]
        try:
            with Publishers(jobs) as group:
                started = group.go()
                done.wait(DELIVERY_TIMEOUT)
                elapsed = time.perf_counter() - started
                sent = tally(group.finish())
        finally:
            subscriber.disconnect()
            subscriber.loop_stop()
        written = broker_written(broker)
    finally:
        broker.cleanup()
    return {
        "broker_written_bytes": written,
        "messages": received,
        "seconds": elapsed,
        "messages_per_s": received / elapsed,
        "publishers": sent,
        "complete": received >= messages,
    }


def broker_written(broker: Mosquitto) -> int:
    """Bytes the broker process has written to storage."""
    if broker.process is None:
        return 0
    for line in Path(f"/proc/{broker.process.pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0
