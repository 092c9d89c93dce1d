"""The canonical reading: one value of one measurand of one device at one time.

Every codec turns its payload into these, so the rest of the BAL never sees a format.
Values stay the decimal text the device sent ("11" stays "11", never 11.0): a
certificate must be about the exact figure, not about a float's approximation of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

EARLIEST_TIME = datetime(1990, 1, 1, tzinfo=UTC)
"""Grid measurements before this are impossible for any device we serve."""

MAX_CLOCK_LEAD = timedelta(days=1)
"""How far ahead of its receipt a reading may be stamped before it counts as impossible."""


FIELD_LIMITS = {"device": 128, "measurand": 128, "value": 64, "unit": 32}
"""Characters each field of a reading may have; an attribute's text at most `ATTR_LIMIT`.
Far beyond any real meter's, small enough that a hostile payload cannot make the
store hold more than it sent (a 100 KB device id repeated in every rejection of a
1,000-reading payload grew the database by 98 MB)."""
ATTR_LIMIT = 128


class InvalidReading(ValueError):
    """A value or time that cannot be part of a canonical reading; the message says why."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement, harmonised. `time` is timezone-aware UTC; `attrs` omits empty keys."""

    device: str
    time: datetime
    measurand: str
    value: str
    unit: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)


def oversized_field(reading: Reading) -> str | None:
    """Which field of `reading` is longer than the BAL keeps, or None."""
    for name, limit in FIELD_LIMITS.items():
        text = getattr(reading, name)
        if text is not None and len(text) > limit:
            return f"{name} of {len(text)} characters (at most {limit})"
    for key, value in reading.attrs.items():
        if isinstance(value, str) and len(value) > ATTR_LIMIT:
            return f"{key} of {len(value)} characters (at most {ATTR_LIMIT})"
    return None


def shown(text: str, limit: int = 40) -> str:
    """`text` quoted for a reason, cut to `limit` characters: a reason never carries a
    hostile payload's long fields along."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} chars)"


def decimal_text(raw: object) -> str:
    """The decimal string of a value as received, or InvalidReading.

    Accepts the text of a JSON number or XML element; rejects NaN, infinities, booleans,
    empty text and anything else that is not a plain decimal number.
    """
    if isinstance(raw, bool) or not isinstance(raw, str):
        raise InvalidReading(f"value {raw!r} is not a decimal number")
    text = raw.strip()
    if not _DECIMAL.fullmatch(text):
        raise InvalidReading(f"value {text[:40]!r} is not a decimal number")
    return text


def parse_time(raw: str) -> datetime:
    """A measurement time from RFC 3339 / xs:dateTime text, as aware UTC.

    A time without a UTC offset is refused: guessing the zone of a meter would put its
    readings an hour or more off, silently.
    """
    text = raw.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidReading(f"time {text[:40]!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidReading(f"time {text[:40]!r} has no UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is past year 9999 in UTC
        raise InvalidReading(f"time {text[:40]!r} is out of range in UTC") from None


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fraction digits and 'Z', as the leaf contract says.
    (Not strftime: its %Y writes year 1 as "1", which nothing reads back.)"""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}Z"


def implausible_time(moment: datetime, received: datetime) -> str | None:
    """Why a measurement time cannot be true, or None when it can."""
    if moment < EARLIEST_TIME:
        return f"time {format_time(moment)} is before {EARLIEST_TIME.year}"
    if moment > received + MAX_CLOCK_LEAD:
        return f"time {format_time(moment)} is more than a day after its receipt"
    return None
