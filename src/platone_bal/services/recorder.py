"""Writes what the BAL keeps; leaves get their indices from one sequencer at a time.

The personality that feeds the logs (Trillian's split): it turns messages and access
entries into rows and leaves; `LogAppender` gives the leaves their indices; the
store's `Transaction` commits both or neither. Every backend gets the same rules.

Where several nodes share a store, only the leader sequences (`leader` gives its fence
while this node leads). The leader writes its own batches with their indices at once,
its lease checked in the same transaction; any other node writes its messages and
rejections and queues the leaves (`QueuedLeaf`), and the leader's `sequence` gives
them their indices, rows and tree nodes a batch at a time. Either way a batch is
durable when `save` returns, so it may be acknowledged. A node alone (`leader` None)
sequences what it writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Literal

import orjson

from platone_bal import metrics
from platone_bal.domain.audit import AUDIT_LOG, AuditEntry
from platone_bal.domain.leaf import reading_of_leaf
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.messages import MessageRecord, ReadingRecord, SaveResult
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.ports import (
    AccessRow,
    Fence,
    LeafKind,
    LeaseLost,
    QueuedLeaf,
    ReadingRow,
    Transaction,
    UnitOfWork,
)
from platone_bal.services.log_appender import LogAppender

Leader = Callable[[], Fence | None]
"""This node's fence while it leads, else None."""

Where = Fence | Literal["alone", "queue"]
"""Where a batch's leaves get their indices: here as the leader (its fence), here on a
node alone, or in the leader's sequencer (queued)."""


class Recorder:
    """Messages with their readings and rejections; access entries of bal-audit."""

    def __init__(
        self,
        store: UnitOfWork,
        appender: LogAppender | None = None,
        leader: Leader | None = None,
    ) -> None:
        self.store = store
        self.appender = appender or LogAppender(SHA3_256)
        self.leader = leader
        """None: this node alone sequences its writes (no leases)."""

    def save(self, records: Sequence[MessageRecord], log: str) -> SaveResult:
        """Write a batch of messages in one transaction; readings get their log indices
        (or are queued for the leader's sequencer).

        A message whose payload the same producer already delivered (MQTT QoS 1
        redelivery, the broker journal's replay) is skipped whole and counted as a
        duplicate.
        """
        where = self._where()
        if where != "queue":
            try:
                return self._save(records, log, where)
            except LeaseLost:
                pass  # the lease went while this node wrote: queue for the next leader
        return self._save(records, log, "queue")

    def _save(self, records: Sequence[MessageRecord], log: str, where: Where) -> SaveResult:
        with self.store.transaction() as tx:
            if isinstance(where, Fence):
                tx.check_lease(where.lease, where.holder, where.token)
            ids = tx.add_messages(records)
            kept = [
                (record, message_id)
                for record, message_id in zip(records, ids, strict=True)
                if message_id is not None
            ]
            readings = [
                (message_id, item) for record, message_id in kept for item in record.readings
            ]
            answers = [answer for record, _ in kept for answer in record.answers]
            rejections = [
                (message_id, record.producer, reason)
                for record, message_id in kept
                for reason in record.rejections
            ]
            tx.add_rejections(rejections)
            if where == "queue":
                tx.queue_leaves(
                    [
                        QueuedLeaf(log, LeafKind.READING, ref, item.leaf_bytes)
                        for ref, item in readings
                    ]
                    + [
                        QueuedLeaf(SETPOINT_LOG, LeafKind.ANSWER, a.setpoint_id, a.leaf_bytes)
                        for a in answers
                    ]
                )
            else:
                self._add_readings(tx, log, readings)
                if answers:  # after the readings' log: every writer locks logs in one order
                    first = self._append(tx, SETPOINT_LOG, [a.leaf_bytes for a in answers])
                    for offset, answer in enumerate(answers):
                        tx.add_setpoint_answer(
                            first + offset, answer.setpoint_id, answer.leaf, answer.leaf_bytes
                        )
        for answer in answers:  # committed (or queued, durably): each answer counted once
            metrics.SETPOINTS.labels(answer.leaf["status"]).inc()
        return SaveResult(
            len(kept), len(records) - len(kept), len(readings), len(rejections), len(answers)
        )

    def append_audit(self, entries: Sequence[AuditEntry]) -> int | None:
        """Append entries as leaves of bal-audit in one transaction; the log's new
        size, or None when they were queued for the leader."""
        leaves = [entry.leaf_bytes() for entry in entries]
        where = self._where()
        if where != "queue":
            try:
                with self.store.transaction() as tx:
                    if isinstance(where, Fence):
                        tx.check_lease(where.lease, where.holder, where.token)
                    return self._add_entries(tx, list(zip(entries, leaves, strict=True)))
            except LeaseLost:
                pass
        with self.store.transaction() as tx:
            tx.queue_leaves([QueuedLeaf(AUDIT_LOG, LeafKind.ACCESS, None, leaf) for leaf in leaves])
        return None

    def sequence(self, fence: Fence, limit: int) -> dict[str, int]:
        """Give up to `limit` queued leaves their indices, rows and tree nodes in one
        transaction, as the leader; how many each log grew by. LeaseLost if this node
        no longer leads (nothing is written then)."""
        with self.store.transaction() as tx:
            tx.check_lease(fence.lease, fence.holder, fence.token)
            queued = tx.take_queued(limit)
            grown: dict[str, int] = {}
            for log, group in groupby(sorted(queued, key=_lock_order), key=lambda q: q.log):
                leaves = list(group)
                grown[log] = len(leaves)
                if log == AUDIT_LOG:
                    entries = [(AuditEntry.of_leaf(orjson.loads(q.leaf)), q.leaf) for q in leaves]
                    self._add_entries(tx, entries)
                elif log == SETPOINT_LOG:
                    first = self._append(tx, log, [q.leaf for q in leaves])
                    for offset, answer in enumerate(leaves):
                        tx.add_setpoint_answer(
                            first + offset, _ref(answer), orjson.loads(answer.leaf), answer.leaf
                        )
                else:
                    readings = [(_ref(q), _reading_record(q.leaf)) for q in leaves]
                    self._add_readings(tx, log, readings)
        return grown

    def _where(self) -> Where:
        if self.leader is None:
            return "alone"
        fence = self.leader()
        return "queue" if fence is None else fence

    def _append(self, tx: Transaction, log: str, leaves: Sequence[bytes]) -> int:
        hasher = self.appender.hasher
        return self.appender.append(tx, log, [hasher.hash_leaf(leaf) for leaf in leaves])

    def _add_readings(
        self, tx: Transaction, log: str, readings: Sequence[tuple[int, ReadingRecord]]
    ) -> None:
        start = self._append(tx, log, [item.leaf_bytes for _, item in readings])
        tx.add_readings(
            [
                ReadingRow(message_id, log, start + offset, item)
                for offset, (message_id, item) in enumerate(readings)
            ]
        )

    def _add_entries(self, tx: Transaction, entries: Sequence[tuple[AuditEntry, bytes]]) -> int:
        """The log's new size."""
        start = self._append(tx, AUDIT_LOG, [leaf for _, leaf in entries])
        tx.add_access_entries(
            [AccessRow(start + n, entry, leaf) for n, (entry, leaf) in enumerate(entries)]
        )
        return start + len(entries)


def _lock_order(leaf: QueuedLeaf) -> tuple[int, str, int]:
    """Readings' logs first, then bal-setpoints, then bal-audit, as every writer takes
    their heads (two writers wait for each other but never deadlock); queue order
    within a log."""
    rank = {SETPOINT_LOG: 1, AUDIT_LOG: 2}.get(leaf.log, 0)
    return rank, leaf.log, leaf.id


def _reading_record(leaf: bytes) -> ReadingRecord:
    parsed = orjson.loads(leaf)
    return ReadingRecord(reading_of_leaf(parsed), parsed, leaf)


def _ref(leaf: QueuedLeaf) -> int:
    if leaf.ref is None:
        raise ValueError(f"queued {leaf.kind} leaf {leaf.id} of {leaf.log} names no row")
    return leaf.ref
