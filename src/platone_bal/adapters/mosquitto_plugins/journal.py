"""The journal the `bal_journal` plugin (`bal_journal.c`) writes: every ingest publish,
recorded before Mosquitto acknowledges it; this side reads its segments.

Why a journal: Mosquitto 2.0 acknowledges a QoS 1 publish before its state reaches
disk, so a Mosquitto crash can lose messages whose senders already got their PUBACK.
The plugin records each one first; the node ingests whatever of a closed segment it
has not stored (`services.journal_replay`).
"""

from __future__ import annotations

import logging
import struct
from datetime import UTC, datetime
from pathlib import Path

from platone_bal.domain.messages import JournalRecord

log = logging.getLogger(__name__)

MAGIC = b"BALJ"
HEADER = struct.Struct("<4sQBII")
"""Magic, received (ns since the epoch), QoS, topic length, payload length."""
OPEN, CLOSED = ".open", ".closed"


class MosquittoJournal:
    """The journal directory as the `BrokerJournal` port: segments, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def prepare(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def close_orphans(self) -> int:
        """Close the segments a Mosquitto that died left open. Only while no Mosquitto
        of this directory runs (the supervisor calls it before each start)."""
        orphans = sorted(self.directory.glob(f"*{OPEN}"))
        for segment in orphans:
            segment.rename(segment.with_suffix(CLOSED))
        return len(orphans)

    def closed_segments(self) -> list[str]:
        return sorted(path.name for path in self.directory.glob(f"*{CLOSED}"))

    def records(self, segment: str) -> list[JournalRecord]:
        return read_segment((self.directory / segment).read_bytes(), segment)

    def discard(self, segment: str) -> None:
        (self.directory / segment).unlink(missing_ok=True)


def read_segment(data: bytes, name: str = "segment") -> list[JournalRecord]:
    """The records of one segment. A record cut short at the end is left out: Mosquitto
    died while writing it, before it sent that publish's acknowledgment."""
    records: list[JournalRecord] = []
    offset = 0
    while offset + HEADER.size <= len(data):
        magic, received_ns, qos, topic_length, payload_length = HEADER.unpack_from(data, offset)
        end = offset + HEADER.size + topic_length + payload_length
        if magic != MAGIC or end > len(data):
            break
        topic_end = offset + HEADER.size + topic_length
        records.append(
            JournalRecord(
                topic=data[offset + HEADER.size : topic_end].decode("utf-8", "replace"),
                payload=data[topic_end:end],
                received=datetime.fromtimestamp(received_ns / 1e9, UTC),
                qos=qos,
            )
        )
        offset = end
    if offset != len(data):
        log.warning("%s: %d bytes after its last whole record ignored", name, len(data) - offset)
    return records
