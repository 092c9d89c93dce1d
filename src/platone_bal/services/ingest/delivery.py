"""What a broker adapter or the HTTP endpoint hands over to ingest: the payload as
received, who sent it if the channel knows, and how to acknowledge it once it is
committed. Nothing else about a channel reaches the pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from platone_bal.domain.messages import Channel, MessageRecord


@dataclass(frozen=True, slots=True)
class Delivery:
    """A payload as a broker or the HTTP endpoint received it.

    `sender` is the authenticated publisher when the channel knows it; `refusal` is set
    when the channel already refused the payload (e.g. an ACL), which is still recorded;
    `ack` is called with everything decided about the delivery once that is committed.
    """

    channel: Channel
    topic: str
    payload: bytes
    received: datetime
    sender: str | None = None
    refusal: str | None = None
    ack: Callable[[MessageRecord], None] | None = None


def now() -> datetime:
    return datetime.now(UTC)
