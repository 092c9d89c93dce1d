"""Writes what the BAL keeps, each batch in one transaction with its log's append.

The personality that feeds the logs (Trillian's split): it turns messages and access
entries into rows and leaves; `LogAppender` gives the leaves their indices; the
store's `Transaction` commits both or neither. Every backend gets the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence

from platone_bal.domain.audit import AUDIT_LOG, AuditEntry
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.messages import MessageRecord, SaveResult
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.ports import AccessRow, ReadingRow, UnitOfWork
from platone_bal.services.log_appender import LogAppender


class Recorder:
    """Messages with their readings and rejections; access entries of bal-audit."""

    def __init__(self, store: UnitOfWork, appender: LogAppender | None = None) -> None:
        self.store = store
        self.appender = appender or LogAppender(SHA3_256)

    def save(self, records: Sequence[MessageRecord], log: str) -> SaveResult:
        """Write a batch of messages in one transaction; readings get their log indices.

        A message whose payload the same producer already delivered (MQTT QoS 1
        redelivery, the broker journal's replay) is skipped whole and counted as a
        duplicate.
        """
        hasher = self.appender.hasher
        with self.store.transaction() as tx:
            ids = tx.add_messages(records)
            kept: list[tuple[MessageRecord, int]] = []
            for record, message_id in zip(records, ids, strict=True):
                if message_id is not None:
                    kept.append((record, message_id))
            leaves = [item for record, _ in kept for item in record.readings]
            start = self.appender.append(
                tx, log, [hasher.hash_leaf(item.leaf_bytes) for item in leaves]
            )
            rows: list[ReadingRow] = []
            rejections: list[tuple[int, str | None, str]] = []
            for record, message_id in kept:
                for item in record.readings:
                    rows.append(ReadingRow(message_id, log, start + len(rows), item))
                rejections.extend((message_id, record.producer, r) for r in record.rejections)
            tx.add_readings(rows)
            tx.add_rejections(rejections)
            answers = [answer for record, _ in kept for answer in record.answers]
            if answers:  # after the readings' log: every writer locks the logs in one order
                first = self.appender.append(
                    tx, SETPOINT_LOG, [hasher.hash_leaf(a.leaf_bytes) for a in answers]
                )
                for offset, answer in enumerate(answers):
                    tx.add_setpoint_answer(
                        first + offset, answer.setpoint_id, answer.leaf, answer.leaf_bytes
                    )
        return SaveResult(
            len(kept), len(records) - len(kept), len(rows), len(rejections), len(answers)
        )

    def append_audit(self, entries: Sequence[AuditEntry]) -> int:
        """Append entries as leaves of bal-audit in one transaction; the log's new size."""
        hasher = self.appender.hasher
        leaves = [entry.leaf_bytes() for entry in entries]
        with self.store.transaction() as tx:
            start = self.appender.append(tx, AUDIT_LOG, [hasher.hash_leaf(b) for b in leaves])
            tx.add_access_entries(
                [
                    AccessRow(start + n, entry, leaf)
                    for n, (entry, leaf) in enumerate(zip(entries, leaves, strict=True))
                ]
            )
        return start + len(entries)
