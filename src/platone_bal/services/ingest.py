"""Ingest: a delivered payload -> checks -> codec -> leaves -> one batched write.

Brokers and the HTTP endpoint only hand over deliveries; this service decides what
becomes a reading and what becomes a rejection with its reason. Bad input never stops
the pipeline: every failure is a rejection row, and the next delivery goes on.
Deliveries are acknowledged to the broker only after their batch is committed, so a
crash loses nothing that the broker will not deliver again.

No payload can stall the writer ("poison message"). Anything that goes wrong while a
payload's leaves are built is that payload's rejection. A batch the store refuses is
split in halves until the payload it refuses is alone; that one is then stored as a
rejection with the reason, raw bytes kept. Only when even that bare record cannot be
written is the fault the store's: then the writer backs off and tries again, and a stop
gives up waiting after its grace (what was not written is not acknowledged, so the
broker delivers it again).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import overload

from platone_bal import metrics
from platone_bal.codecs import DecodeError, decode
from platone_bal.domain.devices import device_publish_refusal, parse_device_login
from platone_bal.domain.leaf import Source, leaf_bytes, leaf_object, message_digest, new_salt
from platone_bal.domain.messages import (
    Channel,
    MessageRecord,
    ReadingRecord,
    SaveResult,
    capped_reasons,
    clipped_reason,
)
from platone_bal.domain.readings import implausible_time, oversized_field, shown
from platone_bal.domain.users import Role, User, topic_producer
from platone_bal.ports import Store, StoreUnavailable
from platone_bal.services.recorder import Recorder

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


@dataclass
class _Lookups:
    """Store look-ups shared by the deliveries of one batch."""

    producers: dict[str, User | None] = field(default_factory=dict)
    device_logins: dict[tuple[str, str], bool] = field(default_factory=dict)
    """(producer, device) -> whether that device has a login of its own."""


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
        self.recorder = Recorder(store)
        self._on_commit = on_commit
        self.log_id = log_id
        self.max_payload_bytes = max_payload_bytes
        self.batch_size = batch_size
        self._queue: queue.Queue[Delivery | object] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._give_up = threading.Event()
        """Set when a stop's grace ran out: the writer stops retrying a failing store."""

    # the pipeline

    def submit(self, delivery: Delivery) -> None:
        """Queue a delivery for the writer; thread-safe and never blocks."""
        self._queue.put(delivery)
        metrics.QUEUE_DEPTH.inc()

    def start(self) -> None:
        self._give_up.clear()
        self._worker = threading.Thread(target=self._run, name="bal-ingest", daemon=True)
        self._worker.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Write everything queued, then stop the writer. With a timeout, stop waiting
        for a failing store after it; returns False if something stayed unwritten (and
        so unacknowledged)."""
        if self._worker is None:
            return True
        self._queue.put(_STOP)
        self._worker.join(timeout)
        if self._worker.is_alive():
            self._give_up.set()
            self._worker.join(2 * _RETRY_MAX_SECONDS)
        finished = not self._worker.is_alive() and not self._give_up.is_set()
        self._worker = None
        if not finished:
            log.error("ingest stopped with deliveries unwritten; the broker delivers them again")
        return finished

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
                if self._give_up.is_set():
                    return

    def _write_until_done(self, batch: list[Delivery]) -> None:
        """Write a batch; store faults are retried with backoff until a stop gives up."""
        pending = [batch]
        delay = 0.5
        while pending:
            try:
                self._write_isolating(pending)
            except Exception:
                metrics.WRITE_RETRIES.inc()
                left = sum(len(chunk) for chunk in pending)
                log.exception(
                    "the store failed with %d deliveries left; retry in %.1fs", left, delay
                )
                if self._give_up.wait(delay):
                    return
                delay = min(delay * 2, _RETRY_MAX_SECONDS)

    def _write_isolating(self, pending: list[list[Delivery]]) -> None:
        """Write the chunks in `pending` (a stack), removing each once written. A chunk
        the store refuses is split; a single delivery it refuses is stored as a
        rejection. `StoreUnavailable` is the store's own fault: it is raised at once, with
        `pending` holding what is left."""
        while pending:
            chunk = pending.pop()
            try:
                self.ingest(chunk)
                continue
            except StoreUnavailable:
                pending.append(chunk)
                raise
            except Exception as error:
                if len(chunk) > 1:
                    middle = len(chunk) // 2
                    pending += [chunk[middle:], chunk[:middle]]
                    log.warning(
                        "a batch of %d failed (%r); writing halves apart", len(chunk), error
                    )
                    continue
                try:
                    self._reject_unstorable(chunk[0], error)
                except Exception:
                    pending.append(chunk)
                    raise

    def _reject_unstorable(self, delivery: Delivery, error: Exception) -> None:
        """Store a payload the store refused as a bare rejection (raw bytes, reason)."""
        record = self._bare_record(delivery, topic_producer(delivery.topic))
        record.topic, record.producer, record.sender = (
            _printable(record.topic),
            _printable(record.producer),
            _printable(record.sender),
        )
        record.rejections.append(f"the payload could not be stored ({_describe(error)})")
        self._commit([delivery], [record])
        metrics.POISON.inc()
        log.error("stored a %d-byte payload as rejected: %r", record.size, error)

    # one batch, synchronously

    def ingest(self, deliveries: Sequence[Delivery]) -> SaveResult:
        """Decide and write a batch in one transaction, then acknowledge its deliveries."""
        lookups = _Lookups()
        return self._commit(deliveries, [self.record(d, lookups) for d in deliveries])

    def _commit(
        self, deliveries: Sequence[Delivery], records: Sequence[MessageRecord]
    ) -> SaveResult:
        """Write the records in one transaction, then acknowledge and count them."""
        result = self.recorder.save(records, self.log_id)
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

    def record(self, delivery: Delivery, lookups: _Lookups | None = None) -> MessageRecord:
        """Everything decided about one delivery: its readings or its rejection reasons
        (at most `MAX_REASONS` of them, and a count of the rest)."""
        lookups = _Lookups() if lookups is None else lookups
        producer_name = topic_producer(delivery.topic)
        record = self._bare_record(delivery, producer_name)
        try:
            self._decide(delivery, record, producer_name, lookups)
        except StoreUnavailable:
            raise  # the store's fault, not the payload's: the batch is retried
        except Exception as error:  # a codec or leaf bug must not stop the pipeline
            log.exception("building the leaves of a %d-byte payload failed", record.size)
            metrics.POISON.inc()
            record.readings.clear()
            record.rejections.append(f"internal error while decoding ({_describe(error)})")
        record.rejections = capped_reasons(record.rejections)
        return record

    def _decide(
        self,
        delivery: Delivery,
        record: MessageRecord,
        producer_name: str | None,
        lookups: _Lookups,
    ) -> None:
        refusal = delivery.refusal or self._refusal(delivery, producer_name, lookups.producers)
        if refusal is not None:
            record.rejections.append(refusal)
            return
        producer = lookups.producers[producer_name or ""]
        assert producer is not None  # _refusal let it through, so it exists
        self._certify(delivery, record, producer, self._topic_device(delivery, lookups))

    def _bare_record(self, delivery: Delivery, producer_name: str | None) -> MessageRecord:
        payload = delivery.payload
        return MessageRecord(
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

    def _topic_device(self, delivery: Delivery, lookups: _Lookups) -> str | None:
        """The device whose own readings alone the delivery may carry: the sender's, if
        a device login sent it; else, when the broker does not say who published, the
        device of the topic `platone/NAME/DEVICE/...` if that device has a login of its
        own (its topic is its own, whoever publishes there)."""
        device = parse_device_login(delivery.sender)
        if device is not None:
            return device[1]
        levels = delivery.topic.split("/")
        if delivery.sender is not None or len(levels) < 3 or not levels[2]:
            return None
        key = (levels[1], levels[2])
        if key not in lookups.device_logins:
            stored = self.store.get_device(*key)
            lookups.device_logins[key] = stored is not None and stored.login is not None
        return levels[2] if lookups.device_logins[key] else None

    def _certify(
        self, delivery: Delivery, record: MessageRecord, producer: User, own_device: str | None
    ) -> None:
        """Decode the payload into `record`: its readings with their leaves, or reasons.
        With `own_device`, readings of other devices are refused."""
        try:
            decoded = decode(delivery.payload)
        except DecodeError as error:
            record.rejections.append(str(error))
            return
        record.format = decoded.format
        record.rejections.extend(decoded.problems)
        source = Source(decoded.format, record.digest, delivery.received)
        for reading in decoded.readings:
            too_long = oversized_field(reading)
            if too_long is not None:
                record.rejections.append(f"{shown(reading.device)}: {too_long}")
                continue
            if own_device is not None and reading.device != own_device:
                record.rejections.append(
                    f"{reading.device} {reading.measurand}: device {own_device!r} "
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


def _describe(error: Exception) -> str:
    return clipped_reason(_printable(f"{type(error).__name__}: {error}"))


@overload
def _printable(text: str) -> str: ...
@overload
def _printable(text: None) -> None: ...
def _printable(text: str | None) -> str | None:
    """Text that any store can hold: lone surrogates and the like escaped."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _owner_of(sender: str | None) -> str | None:
    device = parse_device_login(sender)
    return device[0] if device is not None else sender


def now() -> datetime:
    return datetime.now(UTC)
