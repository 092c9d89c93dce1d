"""POST /v1/ingest: a producer's server posts a payload over HTTPS (P-BAP-02).

The payload takes the same path as an MQTT message (checks, codec, leaves, one batched
write); the answer comes once its outcome is committed, so a 202 means stored. Posting
the same bytes again stores nothing new and answers the same (idempotent).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from platone_bal.api.context import ApiContext
from platone_bal.api.deps import Context, Ingester
from platone_bal.domain.messages import Channel, MessageRecord, Outcome
from platone_bal.domain.users import Role, producer_topic, valid_username
from platone_bal.services.ingest import Delivery, now

router = APIRouter(prefix="/v1", tags=["ingest"])

COMMIT_TIMEOUT = 30.0

_PAYLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "CIM IEC 61968-9 MeterReadings XML (bare or in a 61968-100 envelope) "
        "or PMU JSON, exactly as the device produced it; the kind is detected.",
        "content": {
            "application/xml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


class IngestAnswer(BaseModel):
    message: str = Field(description="Hex SHA3-256 of the posted bytes (the leaves' source)")
    outcome: Outcome
    readings: int = Field(description="Readings stored from this payload")
    rejections: list[str] = Field(description="Why some readings were refused, if any")


@router.post(
    "/ingest",
    status_code=202,
    response_model=IngestAnswer,
    openapi_extra=_PAYLOAD_DOC,
    responses={
        413: {"description": "Payload larger than BAL_MAX_PAYLOAD_BYTES (recorded)"},
        422: {"description": "Payload rejected; the problem lists the reasons (recorded)"},
        503: {"description": "Not committed in time; post again (idempotent)"},
    },
)
async def ingest_payload(
    request: Request,
    ctx: Context,
    who: Ingester,
    device: Annotated[
        str | None,
        Query(description="Topic level under platone/NAME, as the device would publish to"),
    ] = None,
) -> IngestAnswer:
    """Store a CIM XML or PMU JSON payload as the calling producer's data."""
    user = who.user
    if user.role is not Role.PRODUCER:
        raise HTTPException(403, "only producers ingest; register a client for the producer")
    if device is not None and not valid_username(device):
        raise HTTPException(422, "device must be 1-64 of a-z, 0-9, '_', '.', '-'")
    topic = producer_topic(user.username) + (f"/{device}" if device else "")
    limit = ctx.ingest.max_payload_bytes
    payload, complete = await _read_body(request, limit)
    refusal = None if complete else f"payload exceeds the limit of {limit} bytes"
    record = await run_in_threadpool(_submit_and_wait, ctx, topic, payload, user.username, refusal)
    if record is None:
        raise HTTPException(503, "not stored in time; post again", headers={"Retry-After": "5"})
    if not complete:
        raise HTTPException(413, record.rejections[0])
    if record.outcome is Outcome.REJECTED:
        raise HTTPException(422, "; ".join(record.rejections))
    return IngestAnswer(
        message=record.digest,
        outcome=record.outcome,
        readings=len(record.readings),
        rejections=record.rejections,
    )


async def _read_body(request: Request, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body (and whether that was all of it)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[: limit + 1], False
    return b"".join(chunks), True


def _submit_and_wait(
    ctx: ApiContext, topic: str, payload: bytes, sender: str, refusal: str | None
) -> MessageRecord | None:
    done = threading.Event()
    outcome: list[MessageRecord] = []

    def ack(record: MessageRecord) -> None:
        outcome.append(record)
        done.set()

    ctx.ingest.submit(
        Delivery(Channel.HTTP, topic, payload, now(), sender=sender, refusal=refusal, ack=ack)
    )
    return outcome[0] if done.wait(COMMIT_TIMEOUT) else None
