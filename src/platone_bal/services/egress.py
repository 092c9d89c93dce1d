"""Egress: every certified reading republished on certified/NAME/DEVICE/MEASURAND for
its producer and admins, and on granted/ID/NAME/DEVICE/MEASURAND for each active grant
that covers it (QoS 1); with Kafka configured, also produced to `bal.certified.NAME`
(key: the device id, value: the same JSON) for the DSO's other platforms (§8).

Subscribers get harmonised data the moment a signed checkpoint covers it, without
polling (the field trials' "data directly on the broker"). What a grant covers is
decided here per reading, with the same `Slice.covers` as REST (devices, measurands,
measurement time), so MQTT delivers exactly what REST would show; the broker only has
to keep each consumer to the `granted/ID/#` of its active grants. Each message carries the
certified leaf as hashed, its index, and the checkpoint size covering it, so a
subscriber can fetch the proof and check it. Delivery is at least once: each outlet
stores its own position only after its broker took a page, so a crash or an outage
repeats at most one page and subscribers deduplicate on (log, index).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from platone_bal import metrics
from platone_bal.domain.grants import Grant
from platone_bal.domain.readings import parse_time
from platone_bal.domain.users import certified_topic, granted_topic
from platone_bal.ports import CertifiedSink, Store, StoredReading, StreamSink
from platone_bal.services.periodic import PeriodicWorker

PAGE = 1000
_BACKOFF_MAX = 30.0


def certified_message(log_id: str, index: int, checkpoint_size: int, leaf: bytes) -> bytes:
    """The JSON published for one reading: the leaf exactly as certified, and where."""
    return (
        b'{"log":'
        + json.dumps(log_id).encode()
        + b',"index":'
        + str(index).encode()
        + b',"checkpoint_size":'
        + str(checkpoint_size).encode()
        + b',"leaf":'
        + leaf
        + b"}"
    )


class LogEgress(PeriodicWorker):
    """What every outlet does: page through the log up to the newest checkpoint, hand
    each page to `send`, then store how far it got under `position_key`."""

    def __init__(
        self,
        store: Store,
        *,
        log_id: str,
        position_key: str,
        interval: float = 0.2,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(interval, _BACKOFF_MAX)
        self.store = store
        self.log_id = log_id
        self.position_key = position_key
        self.clock = clock

    def send(self, readings: list[StoredReading], leaves: dict[int, bytes], size: int) -> None:
        """Hand one page to the broker; return once it has it all, raise if it has not."""
        raise NotImplementedError

    def publish_pending(self) -> int:
        """Publish what the newest checkpoint covers and was not published; returns how many."""
        signed = self.store.latest_checkpoint(self.log_id)
        if signed is None:
            return 0
        size = signed.checkpoint.size
        position = self.store.egress_position(self.position_key)
        published = 0
        while position < size and not self.stopping:
            count = min(PAGE, size - position)
            # the next live readings from `position` on: an archived day's are skipped
            # (days past the hot window; egress that far behind republishes the rest)
            readings = [
                reading
                for reading in self.store.readings_in_log(self.log_id, position, count)
                if reading.index < size
            ]
            leaves = dict(self.store.leaves(self.log_id, position, count))
            self.send(readings, leaves, size)
            # a short page holds every live reading left below `size`
            position = readings[-1].index + 1 if len(readings) == count else size
            self.store.set_egress_position(self.position_key, position, self.fence)
            published += len(readings)
        return published

    def step(self) -> int:
        return self.publish_pending()


class Egress(LogEgress):
    """The broker's certified/ and granted/ topics (MQTT, QoS 1)."""

    name = "bal-egress"

    def __init__(
        self,
        store: Store,
        sink: CertifiedSink,
        *,
        log_id: str,
        interval: float = 0.2,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(store, log_id=log_id, position_key=log_id, interval=interval,
                         clock=clock)  # fmt: skip
        self.sink = sink

    def send(self, readings: list[StoredReading], leaves: dict[int, bytes], size: int) -> None:
        grants = self._active_grants()
        messages: list[tuple[str, bytes]] = []
        for reading in readings:
            body = certified_message(self.log_id, reading.index, size, leaves[reading.index])
            messages += [(topic, body) for topic in _topics(reading, grants)]
        self.sink.publish(messages)
        metrics.EGRESS.inc(len(readings))

    def _active_grants(self) -> dict[str, list[Grant]]:
        """Accepted, unexpired grants by producer, as they stand now."""
        now = self.clock()
        by_producer: dict[str, list[Grant]] = defaultdict(list)
        for grant in self.store.accepted_grants():
            if grant.active(now):
                by_producer[grant.producer].append(grant)
        return by_producer


KAFKA_TOPIC_PREFIX = "bal.certified."


def kafka_topic(producer: str) -> str:
    """`bal.certified.NAME` (§8); a producer's name is already a safe topic name."""
    return KAFKA_TOPIC_PREFIX + producer


class KafkaEgress(LogEgress):
    """Kafka topics `bal.certified.NAME`, key the device id, value the MQTT message's
    JSON; its own position (`kafka:LOG`), so one broker's outage never holds the other."""

    name = "bal-kafka-egress"

    def __init__(
        self, store: Store, sink: StreamSink, *, log_id: str, interval: float = 0.2
    ) -> None:
        super().__init__(store, log_id=log_id, position_key=f"kafka:{log_id}", interval=interval)
        self.sink = sink

    def send(self, readings: list[StoredReading], leaves: dict[int, bytes], size: int) -> None:
        self.sink.produce(
            [
                (
                    kafka_topic(reading.producer),
                    reading.device,
                    certified_message(self.log_id, reading.index, size, leaves[reading.index]),
                )
                for reading in readings
            ]
        )
        metrics.KAFKA_EGRESS.inc(len(readings))


def _topics(reading: StoredReading, grants: dict[str, list[Grant]]) -> list[str]:
    """The producer's topic, then one per active grant that covers the reading."""
    topics = [certified_topic(reading.producer, reading.device, reading.measurand)]
    covering: Sequence[Grant] = grants.get(reading.producer, ())
    if covering:
        time = parse_time(reading.time)
        topics += [
            granted_topic(grant.id, reading.producer, reading.device, reading.measurand)
            for grant in covering
            if grant.scope.covers(reading.producer, reading.device, reading.measurand, time)
        ]
    return topics
