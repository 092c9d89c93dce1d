"""What the BAL keeps of every payload it receives: the message, its readings, its rejections.

A message is stored with its raw bytes whatever happens to it, so every certified reading
and every rejection can be traced back to exactly what the device sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from platone_bal.domain.readings import Reading


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    PARTIAL = "partial"
    """Some readings stored, others rejected with reasons."""
    REJECTED = "rejected"


class Channel(StrEnum):
    MQTT = "mqtt"
    HTTP = "http"


@dataclass(frozen=True, slots=True)
class ReadingRecord:
    """A reading with its leaf object and the canonical leaf bytes."""

    reading: Reading
    leaf: dict[str, Any]
    leaf_bytes: bytes


MAX_REASONS = 100
"""Rejection reasons kept per message: the first ones and a count of the rest."""
MAX_REASON_CHARS = 300


def clipped_reason(reason: str) -> str:
    """`reason` cut to `MAX_REASON_CHARS`, the cut marked with an ellipsis."""
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    return reason[: MAX_REASON_CHARS - 1] + "…"


def capped_reasons(reasons: list[str]) -> list[str]:
    """At most `MAX_REASONS` reasons of at most `MAX_REASON_CHARS` each, then one line
    counting the rest: what one payload can add to the store and to an answer is bounded
    (an 800 KB array of bad readings gave 400,000 rejection rows and a 17 MB answer)."""
    kept = [clipped_reason(reason) for reason in reasons[:MAX_REASONS]]
    if len(reasons) > MAX_REASONS:
        kept.append(f"... and {len(reasons) - MAX_REASONS} more reasons")
    return kept


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """A publish as the broker wrote it down before acknowledging it."""

    topic: str
    payload: bytes
    received: datetime
    qos: int


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """An answer to set point `setpoint_id`, as its leaf of bal-setpoints."""

    setpoint_id: int
    leaf: dict[str, Any]
    leaf_bytes: bytes


@dataclass(slots=True)
class MessageRecord:
    """One received payload and everything decided about it, written in one go.

    `payload` holds the raw bytes, cut to the size limit for oversized payloads
    (`size` and `digest` are always of the whole payload).
    """

    channel: Channel
    topic: str
    producer: str | None
    sender: str | None
    digest: str
    size: int
    payload: bytes
    received: datetime
    format: str | None = None
    readings: list[ReadingRecord] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    answers: list[AnswerRecord] = field(default_factory=list)
    """A Light Node's signed answer to a set point (a message on platone/NAME/DEVICE/ack)."""

    @property
    def outcome(self) -> Outcome:
        if not self.readings and not self.answers:
            return Outcome.REJECTED
        return Outcome.PARTIAL if self.rejections else Outcome.ACCEPTED


@dataclass(frozen=True, slots=True)
class SaveResult:
    messages: int
    duplicates: int
    readings: int
    rejections: int
    answers: int = 0
