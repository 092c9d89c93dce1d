"""The leaf object of ARCHITECTURE §4 and its canonical bytes.

The leaf is what the Merkle log certifies, so its bytes must be reproducible by any
verifier in any language: RFC 8785 (JCS) canonical JSON of a fixed set of keys.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import rfc8785

from platone_bal.domain.readings import Reading, format_time, parse_time

LEAF_VERSION = 1


@dataclass(frozen=True, slots=True)
class Source:
    """Where a reading came from: payload format, SHA3-256 of the raw bytes, receipt time."""

    format: str
    message: str
    received: datetime


def message_digest(payload: bytes) -> str:
    """Hex SHA3-256 of a raw payload: ties each reading to the bytes the device sent."""
    return hashlib.sha3_256(payload).hexdigest()


def new_salt() -> str:
    """32 lowercase hex chars, fresh per leaf, so low-entropy values cannot be guessed."""
    return secrets.token_hex(16)


def leaf_object(
    reading: Reading, *, log: str, producer: str, owner: str, source: Source, salt: str
) -> dict[str, Any]:
    """The leaf of one reading exactly as §4 defines it."""
    return {
        "v": LEAF_VERSION,
        "log": log,
        "producer": producer,
        "owner": owner,
        "device": reading.device,
        "time": format_time(reading.time),
        "measurand": reading.measurand,
        "value": reading.value,
        "unit": reading.unit,
        "attrs": {
            key: value for key, value in reading.attrs.items() if value not in (None, "", [])
        },
        "source": {
            "format": source.format,
            "message": source.message,
            "received": format_time(source.received),
        },
        "salt": salt,
    }


def reading_of_leaf(leaf: dict[str, Any]) -> Reading:
    """The reading a leaf of `leaf_object` holds (what the sequencer rebuilds from a
    queued leaf: the leaf, not the decoded message, is what was accepted)."""
    return Reading(
        device=leaf["device"],
        time=parse_time(leaf["time"]),
        measurand=leaf["measurand"],
        value=leaf["value"],
        unit=leaf["unit"],
        attrs=leaf["attrs"],
    )


def leaf_bytes(leaf: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of a leaf: the exact bytes that get hashed.

    For the shapes a leaf holds (ASCII keys; strings, null, small integers and lists of
    strings as values) orjson's sorted, compact, UTF-8 JSON is byte for byte RFC 8785
    (the same escapes: the short ones, backslash-u00xx for other control characters, nothing
    else), and tens of times faster than a general JCS encoder; anything else (non-ASCII
    keys sort by UTF-16 units in JCS; floats) takes the general encoder. A property test
    holds the two equal.
    """
    if _plain(leaf):
        return orjson.dumps(leaf, option=orjson.OPT_SORT_KEYS)
    return bytes(rfc8785.dumps(leaf))


def _plain(mapping: dict[str, Any]) -> bool:
    """True when `mapping` has only ASCII keys and str, None, safe int, list-of-str or
    (recursively) such dict values: the shapes where stdlib JSON equals RFC 8785."""
    for key, value in mapping.items():
        if not key.isascii():
            return False
        kind = type(value)
        if kind is str or value is None:
            continue
        if kind is int and abs(value) < 2**53:
            continue
        if kind is dict and _plain(value):
            continue
        if kind is list and all(type(item) is str for item in value):
            continue
        return False
    return True
