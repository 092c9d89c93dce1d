"""Ingest what the broker acknowledged but did not deliver: its journal, replayed.

The node's own Mosquitto writes each publish on `platone/...` to a journal before it
acknowledges it (adapters/mosquitto_plugins). Mosquitto itself keeps its queue on disk
only at its next save, so a Mosquitto crash can lose acknowledged messages; the
journal has them. Every few seconds this worker goes through the segments the broker
closed (full ones, and those of a Mosquitto that stopped or died), ingests each record
whose payload the store does not have yet, waits until ingest has committed them, and
then deletes the segment.

Most records were delivered the ordinary way and are skipped: a payload is known by its
producer and digest, as the store's own duplicate check knows it. A record replayed
while Mosquitto still delivers the same message is stored once (the store ignores a
producer's payload it already holds); only a rejected payload met both ways is
recorded twice, each a rejection with its reason.
"""

from __future__ import annotations

import logging
import threading
import time

from platone_bal import metrics
from platone_bal.domain.leaf import message_digest
from platone_bal.domain.messages import Channel, JournalRecord, MessageRecord
from platone_bal.domain.users import topic_producer
from platone_bal.ports import BrokerJournal, Store
from platone_bal.services.ingest import Delivery, IngestService
from platone_bal.services.periodic import PeriodicWorker

log = logging.getLogger(__name__)


class ReplayIncomplete(RuntimeError):
    """Ingest did not commit a segment's records in time; the segment is kept."""


class JournalReplay(PeriodicWorker):
    name = "bal-journal-replay"

    def __init__(
        self,
        journal: BrokerJournal,
        store: Store,
        ingest: IngestService,
        *,
        interval: float = 5.0,
        commit_timeout: float = 120.0,
    ) -> None:
        super().__init__(interval, max_backoff=60.0)
        self.journal = journal
        self.store = store
        self.ingest = ingest
        self.commit_timeout = commit_timeout
        self.replayed = 0

    def step(self) -> int:
        """Replay every closed segment; returns how many records were ingested."""
        replayed = 0
        for segment in self.journal.closed_segments():
            if self.stopping:
                break
            replayed += self.replay(segment)
            self.journal.discard(segment)
        return replayed

    def replay(self, segment: str) -> int:
        """Ingest the records of one segment that the store does not hold; returns once
        they are committed."""
        records = self.journal.records(segment)
        missing = self._not_stored(records)
        if not missing:
            return 0
        committed = _Countdown(len(missing))
        for record in missing:
            self.ingest.submit(
                Delivery(
                    channel=Channel.MQTT,
                    topic=record.topic,
                    payload=record.payload,
                    received=record.received,
                    ack=committed.done,
                )
            )
        deadline = time.monotonic() + self.commit_timeout
        while not committed.wait(0.1):
            if self.stopping or time.monotonic() > deadline:
                raise ReplayIncomplete(
                    f"{segment}: {committed.left} of {len(missing)} records not committed yet"
                )
        self.replayed += len(missing)
        metrics.JOURNAL_REPLAYED.inc(len(missing))
        log.warning(
            "%s: ingested %d of %d records the broker had acknowledged but not delivered",
            segment,
            len(missing),
            len(records),
        )
        return len(missing)

    def _not_stored(self, records: list[JournalRecord]) -> list[JournalRecord]:
        keys = [
            (topic_producer(record.topic), message_digest(record.payload)) for record in records
        ]
        stored = self.store.recorded(keys)
        return [record for record, key in zip(records, keys, strict=True) if key not in stored]


class _Countdown:
    """Counts commits of the deliveries one replay submitted."""

    def __init__(self, count: int) -> None:
        self.left = count
        self._lock = threading.Lock()
        self._finished = threading.Event()

    def done(self, _: MessageRecord) -> None:
        with self._lock:
            self.left -= 1
            if self.left <= 0:
                self._finished.set()

    def wait(self, timeout: float) -> bool:
        return self._finished.wait(timeout)
