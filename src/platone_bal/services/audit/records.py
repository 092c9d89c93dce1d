"""Each record against its certified leaf: the columns stored beside the leaf are what
the leaf says, and the leaf bytes are the leaf's canonical encoding. A value changed
in the database, but not in the leaf the tree was built from, shows here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.leaf import leaf_bytes
from platone_bal.services.audit.report import BadRow
from platone_bal.services.audit.rows import sql_type

READING_FIELDS = ("log", "producer", "owner", "device", "time", "measurand", "value", "unit")


def check_reading(raw: object, columns: Mapping[str, object]) -> bytes:
    """The leaf bytes, once the columns stored beside them are what the leaf says."""
    data, leaf = leaf_of(raw, "leaf")
    for key in READING_FIELDS:
        if leaf.get(key) != columns.get(key):
            raise BadRow(
                f"{key}: stored {columns.get(key)!r}, certified leaf says {leaf.get(key)!r}"
            )
    attrs = columns.get("attrs")
    try:
        stored_attrs = json.loads(attrs) if isinstance(attrs, str | bytes) else attrs
    except ValueError:
        raise BadRow(f"attrs: stored {attrs!r} is not JSON") from None
    if leaf.get("attrs") != stored_attrs:
        raise BadRow(f"attrs: stored {stored_attrs!r}, certified leaf says {leaf.get('attrs')!r}")
    source = leaf.get("source")
    if not isinstance(source, dict):
        raise BadRow(f"source: the certified leaf has {source!r}, not an object")
    for key, column in (("format", "format"), ("received", "received"), ("message", "message")):
        if source.get(key) != columns.get(column):
            raise BadRow(
                f"source.{key}: stored {columns.get(column)!r}, "
                f"certified leaf says {source.get(key)!r}"
            )
    if columns.get("message_id") is None:
        raise BadRow("its message is missing from the store")
    if columns.get("payload_length") != columns.get("message_size"):
        raise BadRow(
            f"its message {columns.get('message_id')} is stored with "
            f"{columns.get('payload_length')!r} of its {columns.get('message_size')!r} bytes; "
            "a message that gave readings is never cut"
        )
    return data


def check_entry(raw: object, columns: Mapping[str, object]) -> bytes:
    """The entry bytes, once they are a leaf of bal-audit and the columns that decide who
    sees the entry are what it says."""
    data, entry = leaf_of(raw, "entry")
    if entry.get("log") != AUDIT_LOG:
        raise BadRow(f"entry names log {entry.get('log')!r}")
    producers = columns.get("producers")
    if not isinstance(producers, str):
        raise BadRow(f"producers: stored {producers!r}, not text")
    expected = {
        "time": columns.get("time"),
        "who": columns.get("who"),
        "action": columns.get("action"),
        "producers": producers.split(),
    }
    for key, stored in expected.items():
        if entry.get(key) != stored:
            raise BadRow(f"{key}: stored {stored!r}, certified entry says {entry.get(key)!r}")
    return data


def leaf_of(raw: object, what: str) -> tuple[bytes, dict[str, Any]]:
    """The stored bytes and the object they encode, if they are its canonical encoding."""
    if not isinstance(raw, bytes):
        raise BadRow(f"the {what} is stored as {sql_type(raw)}, not as the certified bytes")
    try:
        decoded = json.loads(raw)
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
