"""Rows of the Shared Customer Database as both store backends read and write them.

SQLite and PostgreSQL keep the same tables with the same columns, so turning a row into
a domain object, and a domain object into its column values, is written once here: a
column then changes in both backends at once. The SQL stays in each backend. Where the
two keep a value as different SQL types (SQLite: times as RFC 3339 text, a scope's
names as JSON; PostgreSQL: timestamptz, text[]), a function takes the backend's
conversion as an argument (`unchanged` where psycopg already converts). A boolean is
passed as `bool`, which SQLite stores as the integer 0 or 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any, TypeVar

import orjson

from platone_bal.domain.archive import ArchivedMessage, ArchivedReading
from platone_bal.domain.checkpoint import Anchor, Checkpoint, SignedCheckpoint
from platone_bal.domain.decisions import Decision
from platone_bal.domain.devices import Device, DeviceKind
from platone_bal.domain.grants import Grant, GrantStatus, Slice
from platone_bal.domain.messages import MessageRecord
from platone_bal.domain.readings import format_time
from platone_bal.domain.users import Client, Role, Scope, User
from platone_bal.ports import (
    AccessRow,
    ArchiveRecord,
    ArchiveStatus,
    RawRecord,
    ReadingRow,
    StoredDecision,
    StoredReading,
)

Row = tuple[Any, ...]

_T = TypeVar("_T")


def unchanged(value: _T) -> _T:
    """The conversion of a value the backend stores as it is."""
    return value


# users and platform clients

USER_COLUMNS = "username, role, password_hash, wallet, disabled, token_version"
"""What `user_from_row` reads, in its order."""
USER_INSERT_COLUMNS = "username, role, password_hash, wallet, keystore, disabled"
"""What `user_values` gives, in its order."""


def user_from_row(row: Row) -> User:
    username, role, password_hash, wallet, disabled, token_version = row
    return User(
        username=username,
        role=Role(role),
        password_hash=password_hash,
        wallet=wallet,
        disabled=bool(disabled),
        token_version=token_version,
    )


def user_values(user: User, keystore: str) -> Row:
    return (
        user.username,
        user.role.value,
        user.password_hash,
        user.wallet,
        keystore,
        user.disabled,
    )


CLIENT_COLUMNS = "client_id, name, username, scopes, secret_hash, disabled, token_version"
"""What `client_from_row` reads, in its order."""
CLIENT_INSERT_COLUMNS = "client_id, name, username, scopes, secret_hash, disabled"
"""What `client_values` gives, in its order."""


def client_from_row(row: Row) -> Client:
    client_id, name, username, scopes, secret_hash, disabled, token_version = row
    return Client(
        client_id,
        name,
        username,
        frozenset(Scope(scope) for scope in scopes.split()),
        secret_hash,
        bool(disabled),
        token_version,
    )


def client_values(client: Client) -> Row:
    """Scopes as one space-separated text, sorted."""
    return (
        client.client_id,
        client.name,
        client.username,
        " ".join(sorted(client.scopes)),
        client.secret_hash,
        client.disabled,
    )


# devices

DEVICE_COLUMNS = "producer, device_id, kind, public_key, secret_hash, created, disabled, chain_tx"
"""What `device_from_row` reads and `device_values` gives, in their order."""


def device_from_row(row: Row, read_time: Callable[[Any], datetime]) -> Device:
    """`read_time`: the stored `created` as an aware UTC datetime."""
    producer, device_id, kind, public_key, secret_hash, created, disabled, chain_tx = row
    return Device(
        producer,
        device_id,
        DeviceKind(kind),
        read_time(created),
        public_key,
        secret_hash,
        bool(disabled),
        chain_tx,
    )


def device_values(device: Device, stored_time: Callable[[datetime], object]) -> Row:
    """`stored_time`: `created` as the backend stores a time."""
    return (
        device.producer,
        device.device_id,
        device.kind.value,
        device.public_key,
        device.secret_hash,
        stored_time(device.created),
        device.disabled,
        device.chain_tx,
    )


# grants and their decisions

GRANT_COLUMNS = (
    "producer, consumer, status, devices, measurands, since, until, expires, created,"
    " modified, reason, decided_by"
)
"""What `grant_values` gives; `grant_from_row` reads `id, ` and these."""


def grant_from_row(
    row: Row,
    *,
    read_names: Callable[[Any], Iterable[str]],
    read_time: Callable[[Any], datetime],
    read_optional_time: Callable[[Any], datetime],
) -> Grant:
    """`read_names`: a stored device or measurand set that is not NULL (NULL: all);
    `read_time`: `created` and `modified`; `read_optional_time`: `since`, `until` and
    `expires` when they are not NULL."""
    (grant_id, producer, consumer, status, devices, measurands, since, until, expires,
     created, modified, reason, decided_by) = row  # fmt: skip

    def names(stored: Any) -> frozenset[str] | None:
        return None if stored is None else frozenset(read_names(stored))

    def moment(stored: Any) -> datetime | None:
        return None if stored is None else read_optional_time(stored)

    return Grant(
        id=grant_id,
        consumer=consumer,
        scope=Slice(producer, names(devices), names(measurands), moment(since), moment(until)),
        status=GrantStatus(status),
        created=read_time(created),
        modified=read_time(modified),
        expires=moment(expires),
        reason=reason,
        decided_by=decided_by,
    )


def grant_values(
    grant: Grant,
    *,
    stored_names: Callable[[list[str]], object],
    stored_time: Callable[[datetime], object],
) -> Row:
    """`stored_names`: a device or measurand set, sorted, as the backend stores it
    (None, "all", stays NULL); `stored_time`: a time that is not None."""
    scope = grant.scope

    def names(values: frozenset[str] | None) -> object:
        return None if values is None else stored_names(sorted(values))

    def moment(value: datetime | None) -> object:
        return None if value is None else stored_time(value)

    return (
        scope.producer,
        grant.consumer,
        grant.status.value,
        names(scope.devices),
        names(scope.measurands),
        moment(scope.since),
        moment(scope.until),
        moment(grant.expires),
        stored_time(grant.created),
        stored_time(grant.modified),
        grant.reason,
        grant.decided_by,
    )


DECISION_COLUMNS = (
    "id, grant_id, status, decided_by, provider, consumer, topic, timestamp,"
    " signature, signer, tx, block, chain_id, contract, error"
)
"""What `decision_from_row` reads, in its order."""
DECISION_INSERT_COLUMNS = "grant_id, status, decided_by, provider, consumer, topic, timestamp"
"""What `decision_values` gives, in its order."""


def decision_from_row(row: Row) -> StoredDecision:
    return StoredDecision(row[0], Decision(row[1], GrantStatus(row[2]), *row[3:8]), *row[8:])


def decision_values(decision: Decision) -> Row:
    return (
        decision.grant_id,
        decision.status.value,
        decision.decided_by,
        decision.provider,
        decision.consumer,
        decision.topic,
        decision.timestamp,
    )


# checkpoints and anchors

CHECKPOINT_COLUMNS = "log, size, root, time, signature, signer"
"""What `checkpoint_from_row` reads and `checkpoint_values` gives, in their order."""


def checkpoint_from_row(row: Row) -> SignedCheckpoint:
    log, size, root, time, signature, signer = row
    return SignedCheckpoint(Checkpoint(log, size, bytes(root), time), signature, signer)


def checkpoint_values(signed: SignedCheckpoint) -> Row:
    c = signed.checkpoint
    return (c.log, c.size, c.root, c.time, signed.signature, signed.signer)


ANCHOR_COLUMNS = "id, log, size, root, chain_id, contract, tx, block, time"
"""What `anchor_from_row` reads, in its order."""
ANCHOR_INSERT_COLUMNS = "log, size, root, chain_id, contract, tx, block, time"
"""What `anchor_values` gives, in its order."""


def anchor_from_row(row: Row) -> tuple[int, Anchor]:
    """(row id, anchor)."""
    row_id, log, size, root, chain_id, contract, tx, block, time = row
    return row_id, Anchor(log, size, bytes(root), chain_id, contract, tx, block, time)


def anchor_values(anchor: Anchor) -> Row:
    return (
        anchor.log,
        anchor.size,
        anchor.root,
        anchor.chain_id,
        anchor.contract,
        anchor.tx,
        anchor.block,
        anchor.time,
    )


# messages, readings and the access log (what a transaction writes)

MESSAGE_COLUMNS = (
    "received, channel, topic, producer, sender, digest, size, payload, format, outcome, readings"
)
"""What `message_values` gives, in its order (PostgreSQL adds its id and partition key)."""


def message_values(record: MessageRecord) -> Row:
    """`received` as RFC 3339 text; `readings` is how many the message held."""
    return (
        format_time(record.received),
        record.channel.value,
        record.topic,
        record.producer,
        record.sender,
        record.digest,
        record.size,
        record.payload,
        record.format,
        record.outcome.value,
        len(record.readings),
    )


READING_LEAF_COLUMNS = (
    "log, idx, producer, owner, device, time, measurand, value, unit, attrs, format, received, leaf"
)
"""What `reading_leaf_values` gives, in its order: a reading's place in its log and its
leaf's fields (the message and PostgreSQL's derived columns are each backend's)."""


def reading_leaf_values(row: ReadingRow) -> Row:
    """Text exactly as in the leaf, attrs as compact JSON in the leaf's key order, and
    the leaf bytes as hashed."""
    leaf = row.record.leaf
    return (
        row.log,
        row.index,
        leaf["producer"],
        leaf["owner"],
        leaf["device"],
        leaf["time"],
        leaf["measurand"],
        leaf["value"],
        leaf["unit"],
        json.dumps(leaf["attrs"], separators=(",", ":")),
        leaf["source"]["format"],
        leaf["source"]["received"],
        row.record.leaf_bytes,
    )


def stored_reading_from_row(row: Row) -> StoredReading:
    """From (id, log, idx, producer, owner, device, time, measurand, value, unit,
    attrs, format, received, message digest)."""
    return StoredReading(
        id=row[0],
        log=row[1],
        index=row[2],
        producer=row[3],
        owner=row[4],
        device=row[5],
        time=row[6],
        measurand=row[7],
        value=row[8],
        unit=row[9],
        attrs=orjson.loads(row[10]),
        format=row[11],
        received=row[12],
        message=row[13],
    )


ACCESS_ENTRY_COLUMNS = "idx, time, who, action, leaf"
"""What `access_entry_values` gives, in its order (the producers have a table of their own)."""


def access_entry_values(row: AccessRow) -> Row:
    return (row.index, format_time(row.entry.time), row.entry.who, row.entry.action, row.leaf)


def indexed_leaves(rows: Iterable[Row]) -> list[tuple[int, bytes]]:
    """(index, leaf bytes) from rows of (idx, leaf)."""
    return [(int(index), bytes(leaf)) for index, leaf in rows]


def audit_column_rows(rows: Iterable[Row]) -> list[tuple[int, str, str, str, str]]:
    """(index, time, who, action, producers) from rows of the same."""
    return [
        (int(index), time, who, action, producers) for index, time, who, action, producers in rows
    ]


# raw rows for `bal audit`: nothing converted


def raw_records_from_rows(rows: Iterable[Row]) -> list[RawRecord]:
    """From rows of (index, leaf, *the values of READING_COLUMNS or ENTRY_COLUMNS)."""
    return [RawRecord(row[0], row[1], tuple(row[2:])) for row in rows]


# the hot window: archive files and the rows they hold

ARCHIVE_COLUMNS = (
    "log, day, part, file, sha3, bytes, readings, messages, first_index, last_index,"
    " first_id, last_id, checkpoint_size, status, created, restored"
)
"""What `archive_values` gives and `archive_from_row` reads, in their order."""


def archive_values(record: ArchiveRecord) -> Row:
    """The day as ISO text (both backends compare it as text or cast it)."""
    return (
        record.log,
        record.day.isoformat(),
        record.part,
        record.file,
        record.sha3,
        record.bytes,
        record.readings,
        record.messages,
        record.first_index,
        record.last_index,
        record.first_id,
        record.last_id,
        record.checkpoint_size,
        record.status.value,
        record.created,
        record.restored,
    )


def archive_from_row(row: Row) -> ArchiveRecord:
    day = row[1] if isinstance(row[1], date) else date.fromisoformat(row[1])
    (log, _, part, file, sha3, size, readings, messages, first_index, last_index,
     first_id, last_id, checkpoint_size, status, created, restored) = row  # fmt: skip
    return ArchiveRecord(
        log, day, part, file, bytes(sha3), size, readings, messages, first_index, last_index,
        first_id, last_id, checkpoint_size, ArchiveStatus(status), created, restored,
    )  # fmt: skip


ARCHIVED_READING_COLUMNS = (
    "id, idx, message_id, leaf, log, producer, owner, device, time, measurand, value, unit,"
    " attrs, format, received"
)
"""What `archived_reading_from_row` reads, in its order: a reading as stored."""


def archived_reading_from_row(row: Row) -> ArchivedReading:
    return ArchivedReading(row[0], row[1], row[2], bytes(row[3]), *row[4:])


ARCHIVED_MESSAGE_COLUMNS = (
    "id, received, channel, topic, producer, sender, digest, size, payload, format, outcome,"
    " readings"
)
"""What `archived_message_from_row` reads, in its order: a message as stored."""


def archived_message_from_row(row: Row) -> ArchivedMessage:
    (message_id, received, channel, topic, producer, sender, digest, size, payload, format_,
     outcome, readings) = row  # fmt: skip
    return ArchivedMessage(
        message_id, received, channel, topic, producer, sender, digest, size, bytes(payload),
        format_, outcome, readings,
    )  # fmt: skip


def archived_message_values(message: ArchivedMessage) -> Row:
    """In the order of ARCHIVED_MESSAGE_COLUMNS."""
    return (
        message.id,
        message.received,
        message.channel,
        message.topic,
        message.producer,
        message.sender,
        message.digest,
        message.size,
        message.payload,
        message.format,
        message.outcome,
        message.readings,
    )


def archived_reading_values(reading: ArchivedReading) -> Row:
    """In the order of ARCHIVED_READING_COLUMNS."""
    return (
        reading.id,
        reading.index,
        reading.message_id,
        reading.leaf,
        reading.log,
        reading.producer,
        reading.owner,
        reading.device,
        reading.time,
        reading.measurand,
        reading.value,
        reading.unit,
        reading.attrs,
        reading.format,
        reading.received,
    )
