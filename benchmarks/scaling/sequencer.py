"""The leader's sequencer alone: leaves queued by a follower (`Recorder.save` with no
lease: messages stored, leaves in log_queue), then integrated by the leader
(`Recorder.sequence` under a lease's fence, BATCH leaves per transaction: indices,
reading rows, Merkle nodes, the log's head) until the queue is empty.

On a throwaway PostgreSQL cluster (fsync on) and on SQLite (WAL, synchronous=FULL),
each store fed the same records: PMU frames of 13 readings, as ingest builds them."""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.postgres_cluster import started_cluster

from platone_bal.adapters.postgres import PostgresStore
from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.codecs import decode
from platone_bal.domain.leaf import Source, leaf_bytes, leaf_object, message_digest, new_salt
from platone_bal.domain.messages import Channel, MessageRecord, ReadingRecord
from platone_bal.domain.users import producer_topic
from platone_bal.ports import Fence, Store
from platone_bal.services.recorder import Recorder
from platone_bal.services.sequencer import BATCH
from platone_bal.simulate import pmu_payload

LOG = "bal-main"
PRODUCER = "bench"
OWNER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DEVICES = 200
SAVE_MESSAGES = 200
"""Messages per follower transaction while filling the queue."""


def record(device: str, moment: datetime, received: datetime) -> MessageRecord:
    """A PMU frame (13 readings) as ingest records it: decoded, a leaf per reading."""
    payload = pmu_payload(device, moment, (moment.timestamp() * 3.0) % 360)
    decoded = decode(payload)
    source = Source(decoded.format, message_digest(payload), received)
    readings = []
    for reading in decoded.readings:
        leaf = leaf_object(
            reading, log=LOG, producer=PRODUCER, owner=OWNER, source=source, salt=new_salt()
        )
        readings.append(ReadingRecord(reading, leaf, leaf_bytes(leaf)))
    return MessageRecord(
        channel=Channel.MQTT,
        topic=f"{producer_topic(PRODUCER)}/{device}",
        producer=PRODUCER,
        sender=PRODUCER,
        digest=source.message,
        size=len(payload),
        payload=payload,
        received=received,
        format=decoded.format,
        readings=readings,
        rejections=list(decoded.problems),
    )


def records(leaves: int) -> tuple[list[MessageRecord], float]:
    """PMU frames of DEVICES devices, a frame a second each, about `leaves` readings in
    all; the seconds it took to build them (decoding, leaves), not the sequencer's."""
    started = time.perf_counter()
    received = datetime.now(UTC)
    moment = received - timedelta(hours=1)
    built: list[MessageRecord] = []
    total = 0
    while total < leaves:
        n = len(built)
        at = moment + timedelta(seconds=n // DEVICES)
        built.append(record(f"seq-{n % DEVICES:03d}", at, received))
        total += len(built[-1].readings)
    return built, time.perf_counter() - started


def sequence(store: Store, batches: list[list[MessageRecord]], batch: int) -> dict[str, Any]:
    follower = Recorder(store, leader=lambda: None)
    started = time.perf_counter()
    for chunk in batches:
        follower.save(chunk, LOG)
    filled = time.perf_counter() - started
    queued = store.queued_leaves()
    token = store.take_lease("leader", "bench", 3600)
    if token is None:
        raise RuntimeError("the lease is taken")
    fence = Fence("leader", "bench", token)
    leader = Recorder(store, leader=lambda: fence)
    transactions: list[float] = []
    started = time.perf_counter()
    while True:
        began = time.perf_counter()
        grown = leader.sequence(fence, batch)
        if not grown:
            break
        transactions.append(time.perf_counter() - began)
    seconds = time.perf_counter() - started
    size = store.log_size(LOG)
    if size != queued or store.queued_leaves() != 0:
        raise RuntimeError(f"sequenced {size} of {queued} queued leaves")
    return {
        "leaves": size,
        "seconds": seconds,
        "leaves_per_s": size / seconds,
        "transactions": len(transactions),
        "transaction_s": {
            "p50": statistics.median(transactions),
            "max": max(transactions),
        },
        "queue_fill": {
            "leaves_per_s": queued / filled,
            "seconds": filled,
            "messages_per_transaction": SAVE_MESSAGES,
        },
    }


def bench_sequencer(leaves: int, batch: int = BATCH) -> dict[str, Any]:
    built, building = records(leaves)
    batches = [built[n : n + SAVE_MESSAGES] for n in range(0, len(built), SAVE_MESSAGES)]
    found: dict[str, Any] = {
        "workload": {
            "leaves": sum(len(record.readings) for record in built),
            "messages": len(built),
            "batch": batch,
            "records_built_s": building,
        }
    }
    cluster = started_cluster(fsync=True)
    try:
        store: Store = PostgresStore(cluster.create_database())
        try:
            found["postgres"] = sequence(store, batches, batch)
        finally:
            store.close()
    finally:
        cluster.remove()
    with tempfile.TemporaryDirectory(prefix="bal-scale-sqlite-") as tmp:
        store = SqliteStore(Path(tmp) / "scd.sqlite3")
        try:
            found["sqlite"] = sequence(store, batches, batch)
        finally:
            store.close()
    return found
