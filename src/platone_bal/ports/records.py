"""What the store ports take and give: queries, stored rows, errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from platone_bal.domain.audit import AuditEntry
from platone_bal.domain.decisions import Decision
from platone_bal.domain.grants import Slice
from platone_bal.domain.messages import ReadingRecord


@dataclass(frozen=True, slots=True)
class ReadingQuery:
    """Filters of GET /v1/readings; `after` is the keyset cursor (last id seen)."""

    producer: str | None = None
    device: str | None = None
    measurand: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = 100
    slices: tuple[Slice, ...] | None = None
    """Only readings inside one of these (what the caller may see); None: no limit."""
    newest_first: bool = False
    """Latest first: the page holds the newest readings with id < `before`."""
    before: int | None = None
    """The keyset cursor of a newest-first page (the last id seen); None: from the newest."""


@dataclass(slots=True)
class StoredReading:
    """A reading as the store returns it. Not frozen, unlike the other records: a page
    holds thousands (a device-day 8,640), and a frozen dataclass's __init__ (one
    object.__setattr__ per field) took 19 ms of such a page against 3 ms; nobody
    changes one."""

    id: int
    log: str
    index: int
    producer: str
    owner: str
    device: str
    time: str
    measurand: str
    value: str
    unit: str | None
    attrs: dict[str, Any]
    format: str
    received: str
    message: str


@dataclass(frozen=True, slots=True)
class RejectionQuery:
    producer: str | None = None
    after: int = 0
    limit: int = 100
    newest_first: bool = False
    """The latest `limit` rejections (a dashboard's 'recent'), rather than a page."""


@dataclass(frozen=True, slots=True)
class StoredRejection:
    id: int
    received: str
    channel: str
    topic: str
    producer: str | None
    sender: str | None
    reason: str
    message: str
    size: int
    format: str | None


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A grant decision and, once on chain, its signature and transaction."""

    id: int
    decision: Decision
    signature: str | None = None
    signer: str | None = None
    tx: str | None = None
    block: int | None = None
    chain_id: int | None = None
    contract: str | None = None
    error: str | None = None
    """Why the registry refused to record it, if it did."""


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """GET /v1/series: one device's measurand between two times, in `points` buckets."""

    producer: str
    device: str
    measurand: str
    since: datetime
    until: datetime
    points: int
    slices: tuple[Slice, ...] | None = None
    """Only readings inside one of these (what the caller may see); None: no limit."""


@dataclass(frozen=True, slots=True)
class SeriesBucket:
    """The readings of one time bucket, summarised by the database (values as numbers:
    a chart's points, never a certified value, which stays the reading's string)."""

    start: str
    """Start of the bucket, RFC 3339 UTC."""
    count: int
    min: float
    max: float
    avg: float
    last: float
    """The value of the bucket's latest reading."""


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """A reading to insert: its record, the message it came in and its place in the log."""

    message_id: int
    log: str
    index: int
    record: ReadingRecord


@dataclass(frozen=True, slots=True)
class AccessRow:
    """An access entry to insert at `index` of bal-audit, with its leaf bytes."""

    index: int
    entry: AuditEntry
    leaf: bytes


class LeafKind(StrEnum):
    """What a queued leaf becomes once sequenced."""

    READING = "reading"
    """A reading of bal-main (or the node's log); `ref` is its message's id."""
    ANSWER = "answer"
    """A Light Node's answer in bal-setpoints; `ref` is the set point's id."""
    ACCESS = "access"
    """An access entry of bal-audit; no `ref`."""


@dataclass(frozen=True, slots=True)
class QueuedLeaf:
    """A leaf a node that does not sequence wrote down for the one that does: durable
    (acknowledged) before it has an index. `id` orders the queue (0 before insertion)."""

    log: str
    kind: LeafKind
    ref: int | None
    leaf: bytes
    id: int = 0


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease a leader's write holds, checked inside that write's transaction."""

    lease: str
    holder: str
    token: int


def lease_lost(fence: Fence) -> str:
    return f"lease {fence.lease!r} (token {fence.token}) is no longer held by {fence.holder!r}"


class ArchiveStatus(StrEnum):
    ARCHIVED = "archived"
    """Its readings are only in the archive file."""
    RESTORED = "restored"
    """Its readings are live again (the file stays: it is still their provable copy)."""


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One archive file as the store lists it: a part of a day of a log (a day archived
    again after late readings arrived gets a second part), with the SHA3-256 the file
    must still have and the index and reading-id ranges it holds."""

    log: str
    day: date
    part: int
    file: str
    """The data file's path under BAL_ARCHIVE_DIR (its manifest: `manifest_name`)."""
    sha3: bytes
    bytes: int
    readings: int
    messages: int
    first_index: int
    last_index: int
    first_id: int
    last_id: int
    checkpoint_size: int
    status: ArchiveStatus
    created: str
    restored: str | None = None
    """When it was last restored (None: never, or archived again since)."""


class ArchiveConflict(RuntimeError):
    """The live store is not what an archive or restore step read a moment ago (another
    writer moved readings of that day): nothing was changed; the next run tries again."""


class UserExists(ValueError):
    """The username or wallet is taken."""


MAX_ROW_ID = 2**63 - 1
"""The largest id a store holds (signed 64-bit integers, as SQLite and PostgreSQL keep
them): a larger one names no row."""


class StoreUnavailable(RuntimeError):
    """The store cannot be used right now (locked, an I/O error, a full disk): a fault of
    the store, not of the data, so the caller retries later instead of rejecting."""


class LeaseLost(StoreUnavailable):
    """A leader's write refused: its lease expired or another node holds it now. Not a
    fault of the data: the write is retried by whoever leads next."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record of a log as stored, for `bal audit`: nothing is converted, so a value
    of the wrong type is reported with its index instead of crashing the audit."""

    index: object
    leaf: object
    """The leaf bytes as hashed (a BLOB, unless someone changed its type)."""
    values: tuple[object, ...]
    """What is stored beside the leaf, in the order of `READING_COLUMNS` (a reading's
    fields and its message's digest, id, size and stored payload length) or
    `ENTRY_COLUMNS` (an access entry's time, who, action, producers): a tuple, as the
    audit reads a whole log of them and compares them in slices."""

    @property
    def columns(self) -> dict[str, object]:
        """The values by column name."""
        keys = {len(k): k for k in (READING_COLUMNS, ENTRY_COLUMNS, SETPOINT_RAW_COLUMNS)}
        return dict(zip(keys[len(self.values)], self.values, strict=True))


READING_COLUMNS = (
    "log", "producer", "owner", "device", "time", "measurand", "value", "unit", "attrs",
    "format", "received", "message", "message_id", "message_size", "payload_length",
)  # fmt: skip
"""A reading's RawRecord.values, in order."""
ENTRY_COLUMNS = ("time", "who", "action", "producers")
"""A bal-audit entry's RawRecord.values, in order."""
SETPOINT_RAW_COLUMNS = (
    "kind", "producer", "device", "measurand", "value", "unit", "start", "end", "issuer",
    "time", "answers", "answer_status", "answer_time", "answer_signer", "answer_producer",
    "answer_device",
)  # fmt: skip
"""A bal-setpoints leaf's RawRecord.values, in order: its kind, the set point row it is
(or NULLs), and the set point row it answers (its index and answer, or NULLs)."""

LeafRow = tuple[object, object, object, object, object]
"""(index, leaf, attrs, members, whole) of one reading, for `bal audit`'s fast path:
see `RawStore.raw_leaf_rows`."""


@dataclass(slots=True)
class StoredSetPoint:
    """A set point of bal-setpoints as the store keeps it, with its answer once given."""

    id: int
    index: int
    producer: str
    device: str
    measurand: str
    value: str
    unit: str | None
    start: str
    end: str
    issuer: str
    issued: str
    status: str
    delivered: str | None = None
    answer_index: int | None = None
    answer_status: str | None = None
    answer_time: str | None = None
    answer_signer: str | None = None
