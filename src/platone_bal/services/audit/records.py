"""Each record against its certified leaf: the columns stored beside the leaf are what
the leaf says, and the leaf bytes are the leaf's canonical encoding. A value changed
in the database, but not in the leaf the tree was built from, shows here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.leaf import leaf_bytes
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.ports import ENTRY_COLUMNS, READING_COLUMNS
from platone_bal.services.audit.report import BadRow
from platone_bal.services.audit.rows import sql_type

READING_FIELDS = READING_COLUMNS[:8]
"""The leaf's keys stored as columns of the same name (log ... unit)."""
SOURCE_FIELDS = ("format", "received", "message")
"""The leaf's `source` keys, stored as the columns that follow `attrs`."""


def check_reading(raw: object, values: tuple[object, ...]) -> bytes:
    """The leaf bytes, once the columns stored beside them (`values`, in the order of
    READING_COLUMNS) are what the leaf says. Whole tuples are compared first (the audit
    reads every reading of a log): a field is named only when they differ."""
    data, leaf = leaf_of(raw, "leaf")
    stored = values[:8]
    certified = tuple(map(leaf.get, READING_FIELDS))
    if certified != stored:
        differing(READING_FIELDS, stored, certified, "")
    attrs = values[8]
    try:
        stored_attrs = orjson.loads(attrs) if isinstance(attrs, str | bytes) else attrs
    except ValueError:
        raise BadRow(f"attrs: stored {attrs!r} is not JSON") from None
    if leaf.get("attrs") != stored_attrs:
        raise BadRow(f"attrs: stored {stored_attrs!r}, certified leaf says {leaf.get('attrs')!r}")
    source = leaf.get("source")
    if not isinstance(source, dict):
        raise BadRow(f"source: the certified leaf has {source!r}, not an object")
    stored, certified = values[9:12], tuple(map(source.get, SOURCE_FIELDS))
    if certified != stored:
        differing(SOURCE_FIELDS, stored, certified, "source.")
    message_id, message_size, payload_length = values[12:15]
    if message_id is None:
        raise BadRow("its message is missing from the store")
    if payload_length != message_size:
        raise BadRow(
            f"its message {message_id} is stored with "
            f"{payload_length!r} of its {message_size!r} bytes; "
            "a message that gave readings is never cut"
        )
    return data


def differing(
    keys: tuple[str, ...], stored: tuple[object, ...], certified: tuple[object, ...], prefix: str
) -> None:
    """Name the first key whose stored and certified values differ."""
    for key, mine, theirs in zip(keys, stored, certified, strict=True):
        if mine != theirs:
            raise BadRow(f"{prefix}{key}: stored {mine!r}, certified leaf says {theirs!r}")


def check_entry(raw: object, values: tuple[object, ...]) -> bytes:
    """The entry bytes, once they are a leaf of bal-audit and the columns that decide who
    sees the entry (`values`, in the order of ENTRY_COLUMNS) are what it says."""
    data, entry = leaf_of(raw, "entry")
    if entry.get("log") != AUDIT_LOG:
        raise BadRow(f"entry names log {entry.get('log')!r}")
    time, who, action, producers = values
    if not isinstance(producers, str):
        raise BadRow(f"producers: stored {producers!r}, not text")
    for key, stored in zip(ENTRY_COLUMNS, (time, who, action, producers.split()), strict=True):
        if entry.get(key) != stored:
            raise BadRow(f"{key}: stored {stored!r}, certified entry says {entry.get(key)!r}")
    return data


SETPOINT_FIELDS = (
    "producer", "device", "measurand", "value", "unit", "start", "end", "issuer", "time",
)  # fmt: skip
"""A set point leaf's keys stored in its row (SETPOINT_RAW_COLUMNS[1:10])."""
ANSWER_FIELDS = ("setpoint", "status", "time", "signer", "producer", "device")
"""An answer leaf's keys stored in the row it answers (SETPOINT_RAW_COLUMNS[10:16])."""


SETPOINT_FIELDS = (
    "producer", "device", "measurand", "value", "unit", "start", "end", "issuer", "time",
)  # fmt: skip
"""A set point leaf's keys stored in its row (SETPOINT_RAW_COLUMNS[1:10])."""
ANSWER_FIELDS = ("setpoint", "status", "time", "signer", "producer", "device")
"""An answer leaf's keys stored in the row it answers (SETPOINT_RAW_COLUMNS[10:16])."""


def check_setpoint_leaf(raw: object, values: tuple[object, ...]) -> bytes:
    """The bytes of a bal-setpoints leaf, once they are a canonical leaf of that log and
    the set point row it is (a set point) or whose answer it is (an answer) says what
    the leaf says (`values` in the order of SETPOINT_RAW_COLUMNS)."""
    data, leaf = leaf_of(raw, "leaf")
    if leaf.get("log") != SETPOINT_LOG:
        raise BadRow(f"the leaf names log {leaf.get('log')!r}")
    kind = values[0]
    if leaf.get("kind") != kind:
        raise BadRow(f"kind: stored {kind!r}, certified leaf says {leaf.get('kind')!r}")
    keys: tuple[str, ...]
    if kind == "setpoint":
        keys, stored = SETPOINT_FIELDS, values[1:10]
    elif kind == "answer":
        keys, stored = ANSWER_FIELDS, values[10:16]
    else:
        raise BadRow(f"kind {kind!r} is neither setpoint nor answer")
    certified = tuple(map(leaf.get, keys))
    if certified != stored:
        differing(keys, stored, certified, "")
    return data


def check_of(log: str) -> Callable[[object, tuple[object, ...]], bytes]:
    """The full check of one record of `log`."""
    if log == AUDIT_LOG:
        return check_entry
    return check_setpoint_leaf if log == SETPOINT_LOG else check_reading


def leaf_of(raw: object, what: str) -> tuple[bytes, dict[str, Any]]:
    """The stored bytes and the object they encode, if they are its canonical encoding."""
    if not isinstance(raw, bytes):
        raise BadRow(f"the {what} is stored as {sql_type(raw)}, not as the certified bytes")
    try:
        decoded = orjson.loads(raw)
    except (ValueError, RecursionError):
        raise BadRow(f"the stored {what} bytes are not JSON") from None
    if not isinstance(decoded, dict):
        raise BadRow(f"the stored {what} is not a JSON object")
    try:
        canonical = leaf_bytes(decoded)
    except (ValueError, TypeError):
        canonical = None
    if canonical != raw:
        raise BadRow(f"stored {what} bytes are not the canonical (RFC 8785) encoding of the {what}")
    return raw, decoded
