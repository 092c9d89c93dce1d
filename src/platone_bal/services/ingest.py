"""Ingest: a delivered payload -> checks -> codec -> leaves -> one batched write.

Brokers and the HTTP endpoint only hand over deliveries; this service decides what
becomes a reading and what becomes a rejection with its reason. Bad input never stops
the pipeline: every failure is a rejection row, and the next delivery goes on.
Deliveries are acknowledged to the broker only after their batch is committed, so a
crash loses nothing that the broker will not deliver again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from platone_bal import metrics
from platone_bal.codecs import DecodeError, decode
from platone_bal.domain.devices import device_publish_refusal, parse_device_login
from platone_bal.domain.leaf import Source, leaf_bytes, leaf_object, message_digest, new_salt
from platone_bal.domain.messages import Channel, MessageRecord, ReadingRecord, SaveResult
from platone_bal.domain.readings import implausible_time
from platone_bal.domain.users import Role, User, topic_producer
from platone_bal.ports import Store

log = logging.getLogger(__name__)

_STOP = object()
_RETRY_MAX_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """A payload as a broker or the HTTP endpoint received it.

    `sender` is the authenticated publisher when the channel knows it; `refusal` is set
    when the channel already refused the payload (e.g. an ACL), which is still recorded;
    `ack` is called with everything decided about the delivery once that is committed.
    """

    channel: Channel
    topic: str
    payload: bytes
    received: datetime
    sender: str | None = None
    refusal: str | None = None
    ack: Callable[[MessageRecord], None] | None = None


class IngestService:
    def __init__(
        self,
        store: Store,
        *,
        log_id: str,
        max_payload_bytes: int,
        batch_size: int = 2000,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self._on_commit = on_commit
        self.log_id = log_id
        self.max_payload_bytes = max_payload_bytes
        self.batch_size = batch_size
        self._queue: queue.Queue[Delivery | object] = queue.Queue()
        self._worker: threading.Thread | None = None

    # the pipeline

    def submit(self, delivery: Delivery) -> None:
        """Queue a delivery for the writer; thread-safe and never blocks."""
        self._queue.put(delivery)
        metrics.QUEUE_DEPTH.inc()

    def start(self) -> None:
        self._worker = threading.Thread(target=self._run, name="bal-ingest", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Write everything queued, then stop the writer."""
        if self._worker is not None:
            self._queue.put(_STOP)
            self._worker.join()
            self._worker = None

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted delivery is written; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[Delivery] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                    self._queue.task_done()
                elif isinstance(item, Delivery):
                    batch.append(item)
                if stopping or len(batch) >= self.batch_size:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write_until_done(batch)
                for _ in batch:
                    self._queue.task_done()
                metrics.QUEUE_DEPTH.dec(len(batch))

    def _write_until_done(self, batch: list[Delivery]) -> None:
        """Write a batch, retrying store errors with backoff: nothing is dropped."""
        delay = 0.5
        while True:
            try:
                self.ingest(batch)
                return
            except Exception:
                metrics.WRITE_RETRIES.inc()
                log.exception("writing %d deliveries failed; retrying in %.1fs", len(batch), delay)
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_SECONDS)

    # one batch, synchronously

    def ingest(self, deliveries: Sequence[Delivery]) -> SaveResult:
        """Decide and write a batch in one transaction, then acknowledge its deliveries."""
        producers: dict[str, User | None] = {}
        records = [self.record(delivery, producers) for delivery in deliveries]
        result = self.store.save(records, self.log_id)
        if result.readings and self._on_commit is not None:
            self._on_commit()
        for delivery, record in zip(deliveries, records, strict=True):
            if delivery.ack is not None:
                delivery.ack(record)
        for record in records:
            metrics.MESSAGES.labels(record.outcome.value).inc()
        metrics.READINGS.inc(result.readings)
        metrics.REJECTIONS.inc(result.rejections)
        metrics.DUPLICATES.inc(result.duplicates)
        return result

    def record(
        self, delivery: Delivery, producers: dict[str, User | None] | None = None
    ) -> MessageRecord:
        """Everything decided about one delivery: its readings or its rejection reasons."""
        producers = {} if producers is None else producers
        payload = delivery.payload
        producer_name = topic_producer(delivery.topic)
        record = MessageRecord(
            channel=delivery.channel,
            topic=delivery.topic,
            # A refused payload belongs to whoever sent it (a device: to its producer),
            # not to the topic it aimed at.
            producer=_owner_of(delivery.sender) or producer_name,
            sender=delivery.sender,
            digest=message_digest(payload),
            size=len(payload),
            payload=payload[: self.max_payload_bytes],
            received=delivery.received,
        )
        refusal = delivery.refusal or self._refusal(delivery, producer_name, producers)
        if refusal is not None:
            record.rejections.append(refusal)
            return record
        producer = producers[producer_name or ""]
        assert producer is not None  # _refusal let it through, so it exists
        try:
            decoded = decode(payload)
        except DecodeError as error:
            record.rejections.append(str(error))
            return record
        except Exception as error:  # a codec bug must not stop the pipeline
            log.exception("decoder failed on a %d-byte payload", len(payload))
            record.rejections.append(f"internal decoder error ({type(error).__name__})")
            return record
        record.format = decoded.format
        record.rejections.extend(decoded.problems)
        source = Source(decoded.format, record.digest, delivery.received)
        device = parse_device_login(delivery.sender)
        for reading in decoded.readings:
            if device is not None and reading.device != device[1]:
                record.rejections.append(
                    f"{reading.device} {reading.measurand}: device {delivery.sender!r} "
                    "may send only its own readings"
                )
                continue
            why = implausible_time(reading.time, delivery.received)
            if why is not None:
                record.rejections.append(f"{reading.device} {reading.measurand}: {why}")
                continue
            leaf = leaf_object(
                reading,
                log=self.log_id,
                producer=producer.username,
                owner=producer.wallet,
                source=source,
                salt=new_salt(),
            )
            record.readings.append(ReadingRecord(reading, leaf, leaf_bytes(leaf)))
        return record

    def _refusal(
        self,
        delivery: Delivery,
        producer_name: str | None,
        producers: dict[str, User | None],
    ) -> str | None:
        """Why a delivery cannot be accepted before decoding, or None."""
        size = len(delivery.payload)
        if size > self.max_payload_bytes:
            return f"payload of {size} bytes exceeds the limit of {self.max_payload_bytes}"
        if producer_name is None:
            return f"topic {delivery.topic!r} is not under platone/<producer>"
        device = parse_device_login(delivery.sender)
        if device is not None:
            refusal = device_publish_refusal(*device, delivery.topic)
            if refusal is not None:
                return refusal
            stored = self.store.get_device(*device)
            if stored is None or stored.disabled:
                return f"device {delivery.sender!r} is unknown or disabled"
        elif delivery.sender is not None and delivery.sender != producer_name:
            return f"{delivery.sender!r} may not publish on {delivery.topic!r}"
        if producer_name not in producers:
            producers[producer_name] = self.store.get_user(producer_name)
        producer = producers[producer_name]
        if producer is None:
            return f"unknown producer {producer_name!r}"
        if producer.role is not Role.PRODUCER:
            return f"{producer_name!r} is not a producer"
        if producer.disabled:
            return f"producer {producer_name!r} is disabled"
        return None


def _owner_of(sender: str | None) -> str | None:
    device = parse_device_login(sender)
    return device[0] if device is not None else sender


def now() -> datetime:
    return datetime.now(UTC)
