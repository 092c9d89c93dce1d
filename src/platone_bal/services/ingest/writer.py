"""The ingest writer: deliveries queued from any thread, written by one thread in
batches of one transaction each, and acknowledged only once committed.

A store fault never loses a delivery and no payload stalls the writer: a batch the
store refuses is split in halves until the payload it refuses is alone, which is then
stored as a bare rejection; when even that cannot be written the store itself is down,
and the writer backs off and retries until a stop gives up after its grace.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from platone_bal import metrics
from platone_bal.domain.messages import MessageRecord, SaveResult
from platone_bal.domain.users import topic_producer
from platone_bal.ports import Store, StoreUnavailable
from platone_bal.services.ingest.delivery import Delivery
from platone_bal.services.ingest.records import Lookups, RecordBuilder, describe, printable
from platone_bal.services.recorder import Recorder

log = logging.getLogger(__name__)

_STOP = object()
_RETRY_MAX_SECONDS = 30.0


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
        self.records = RecordBuilder(store, log_id=log_id, max_payload_bytes=max_payload_bytes)
        self._on_commit = on_commit
        self.on_answers: Callable[[], object] = lambda: None
        """Told after a batch logged set point answers (bal-setpoints grew)."""
        self.batch_size = batch_size
        self._queue: queue.Queue[Delivery | object] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._give_up = threading.Event()
        """Set when a stop's grace ran out: the writer stops retrying a failing store."""

    @property
    def log_id(self) -> str:
        """The Merkle log the readings are appended to."""
        return self.records.log_id

    @property
    def max_payload_bytes(self) -> int:
        """A larger payload is refused (and stored cut to this size)."""
        return self.records.max_payload_bytes

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
        record = self.records.bare(delivery, topic_producer(delivery.topic))
        record.topic, record.producer, record.sender = (
            printable(record.topic),
            printable(record.producer),
            printable(record.sender),
        )
        record.rejections.append(f"the payload could not be stored ({describe(error)})")
        self._commit([delivery], [record])
        metrics.POISON.inc()
        log.error("stored a %d-byte payload as rejected: %r", record.size, error)

    # one batch, synchronously

    def record(self, delivery: Delivery, lookups: Lookups | None = None) -> MessageRecord:
        """Everything decided about one delivery, not written (`RecordBuilder.build`)."""
        return self.records.build(delivery, lookups)

    def ingest(self, deliveries: Sequence[Delivery]) -> SaveResult:
        """Decide and write a batch in one transaction, then acknowledge its deliveries."""
        lookups = Lookups()
        return self._commit(deliveries, [self.record(d, lookups) for d in deliveries])

    def _commit(
        self, deliveries: Sequence[Delivery], records: Sequence[MessageRecord]
    ) -> SaveResult:
        """Write the records in one transaction, then acknowledge and count them."""
        result = self.recorder.save(records, self.log_id)
        if result.readings and self._on_commit is not None:
            self._on_commit()
        if result.answers:
            self.on_answers()
        for delivery, record in zip(deliveries, records, strict=True):
            if delivery.ack is not None:
                delivery.ack(record)
        for record in records:
            metrics.MESSAGES.labels(record.outcome.value).inc()
        metrics.READINGS.inc(result.readings)
        metrics.REJECTIONS.inc(result.rejections)
        metrics.DUPLICATES.inc(result.duplicates)
        return result
