"""/v1/grants and /v1/producers: consumers ask, producers decide, either side revokes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from platone_bal.api.audit import audit
from platone_bal.api.deps import Context, GrantWriter, Principal, Reader, RowId
from platone_bal.domain.decisions import typed_data
from platone_bal.domain.grants import (
    Grant,
    GrantConflict,
    GrantError,
    GrantStatus,
    NotEntitled,
    Slice,
)
from platone_bal.domain.readings import format_time
from platone_bal.services.grants import GrantNotFound

router = APIRouter(prefix="/v1", tags=["grants"])


class ScopeFields(BaseModel):
    """What part of the producer's data; leave a field out for no limit on it."""

    model_config = ConfigDict(populate_by_name=True)

    devices: list[str] | None = Field(default=None, examples=[["11111111"]], max_length=1000)
    measurands: list[str] | None = Field(default=None, max_length=1000)
    since: datetime | None = Field(
        default=None, alias="from", description="Measurement time, inclusive (RFC 3339)"
    )
    until: datetime | None = Field(
        default=None, alias="to", description="Measurement time, exclusive (RFC 3339)"
    )
    expires: datetime | None = Field(default=None, description="When the grant ends by itself")

    @field_validator("since", "until", "expires")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        """A time the store can hold and read back: with an offset, representable in UTC
        (a consumer's `0001-01-01T00:00:00Z` once made every grant list of its producer
        fail)."""
        if moment is None:
            return None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("needs a UTC offset (RFC 3339)")
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range in UTC") from None

    def slice_of(self, producer: str) -> Slice:
        return Slice(
            producer,
            None if self.devices is None else frozenset(self.devices),
            None if self.measurands is None else frozenset(self.measurands),
            self.since,
            self.until,
        )


class GrantRequest(ScopeFields):
    producer: str = Field(examples=["producer1"])
    reason: str | None = Field(default=None, max_length=500)


class Decision(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


class GrantOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    producer: str
    consumer: str
    status: GrantStatus = Field(description="As of now: an accepted grant past expiry is expired")
    devices: list[str] | None
    measurands: list[str] | None
    since: str | None = Field(alias="from")
    until: str | None = Field(alias="to")
    expires: str | None
    created: str
    modified: str
    reason: str | None
    decided_by: str | None

    @classmethod
    def of(cls, grant: Grant, now: datetime) -> GrantOut:
        scope = grant.scope

        def text(moment: datetime | None) -> str | None:
            return None if moment is None else format_time(moment)

        return cls.model_validate(
            {
                "id": grant.id,
                "producer": grant.producer,
                "consumer": grant.consumer,
                "status": grant.status_at(now),
                "devices": None if scope.devices is None else sorted(scope.devices),
                "measurands": None if scope.measurands is None else sorted(scope.measurands),
                "from": text(scope.since),
                "to": text(scope.until),
                "expires": text(grant.expires),
                "created": format_time(grant.created),
                "modified": format_time(grant.modified),
                "reason": grant.reason,
                "decided_by": grant.decided_by,
            }
        )


def _answer(ctx: Context, grant: Grant) -> GrantOut:
    return GrantOut.of(grant, ctx.grants.clock())


def _decided(ctx: Context, request: Request, who: Principal, grant: Grant) -> GrantOut:
    """The answer to a grant change, which goes to the audit log first."""
    audit(ctx, request, who, f"grant.{grant.status.value}", [grant.producer], 0)
    return _answer(ctx, grant)


def _errors_as_http(error: Exception) -> HTTPException:
    if isinstance(error, GrantNotFound):
        return HTTPException(404, str(error))
    if isinstance(error, NotEntitled):
        return HTTPException(403, str(error))
    if isinstance(error, GrantConflict):
        return HTTPException(409, str(error))
    return HTTPException(422, str(error))


@router.post("/grants", status_code=201, response_model=GrantOut, response_model_by_alias=True)
def request_grant(body: GrantRequest, request: Request, ctx: Context, who: GrantWriter) -> GrantOut:
    """A consumer asks a producer for (part of) its data."""
    try:
        grant = ctx.grants.request(
            who.user, body.slice_of(body.producer), body.expires, body.reason
        )
    except (GrantError, GrantNotFound) as error:
        raise _errors_as_http(error) from None
    return _decided(ctx, request, who, grant)


@router.get("/grants", response_model=list[GrantOut], response_model_by_alias=True)
def list_grants(ctx: Context, who: Reader) -> list[GrantOut]:
    """The grants you are a party to (admins: all grants), newest first."""
    now = ctx.grants.clock()
    return [GrantOut.of(grant, now) for grant in ctx.grants.grants_of(who.user)]


@router.get("/grants/{grant_id}", response_model=GrantOut, response_model_by_alias=True)
def get_grant(grant_id: RowId, ctx: Context, who: Reader) -> GrantOut:
    try:
        return _answer(ctx, ctx.grants.get(grant_id, who.user))
    except GrantNotFound as error:
        raise _errors_as_http(error) from None


@router.post("/grants/{grant_id}/accept", response_model=GrantOut, response_model_by_alias=True)
def accept_grant(
    grant_id: RowId,
    request: Request,
    ctx: Context,
    who: GrantWriter,
    narrowed: Annotated[
        ScopeFields | None, Body(description="Accept for less than asked (optional)")
    ] = None,
) -> GrantOut:
    """The producer accepts, optionally narrowing devices, measurands, window or expiry."""
    try:
        grant = ctx.grants.get(grant_id, who.user)
        scope = None
        if narrowed is not None:
            given = narrowed.slice_of(grant.producer)
            scope = grant.scope.narrowed(given.devices, given.measurands, given.since, given.until)
        expires = None if narrowed is None else narrowed.expires
        return _decided(ctx, request, who, ctx.grants.accept(grant_id, who.user, scope, expires))
    except (GrantError, GrantNotFound) as error:
        raise _errors_as_http(error) from None


@router.post("/grants/{grant_id}/refuse", response_model=GrantOut, response_model_by_alias=True)
def refuse_grant(
    grant_id: RowId,
    request: Request,
    ctx: Context,
    who: GrantWriter,
    body: Decision | None = None,
) -> GrantOut:
    return _ended(ctx, request, who, body, lambda why: ctx.grants.refuse(grant_id, who.user, why))


@router.post("/grants/{grant_id}/revoke", response_model=GrantOut, response_model_by_alias=True)
def revoke_grant(
    grant_id: RowId,
    request: Request,
    ctx: Context,
    who: GrantWriter,
    body: Decision | None = None,
) -> GrantOut:
    """Either side ends an accepted grant; REST and MQTT access stop at once."""
    return _ended(ctx, request, who, body, lambda why: ctx.grants.revoke(grant_id, who.user, why))


def _ended(
    ctx: Context,
    request: Request,
    who: Principal,
    body: Decision | None,
    end: Callable[[str | None], Grant],
) -> GrantOut:
    """A refuse or revoke with its optional reason, answered like every decision."""
    try:
        return _decided(ctx, request, who, end(body.reason if body else None))
    except (GrantError, GrantNotFound) as error:
        raise _errors_as_http(error) from None


class ProducerOut(BaseModel):
    username: str
    topic: str
    wallet: str
    grant_status: GrantStatus | None = Field(description="Your newest grant with them, if any")
    grant_id: int | None


@router.get("/producers", response_model=list[ProducerOut])
def list_producers(ctx: Context, who: Reader) -> list[ProducerOut]:
    """The producers a consumer may ask, with the status of its own newest grant."""
    now = ctx.grants.clock()
    return [
        ProducerOut(
            username=producer.username,
            topic=producer.topic or "",
            wallet=producer.wallet,
            grant_status=mine.status_at(now) if mine else None,
            grant_id=mine.id if mine else None,
        )
        for producer, mine in ctx.grants.producers_for(who.user)
    ]


@router.get("/grants/{grant_id}/evidence")
def grant_evidence(grant_id: RowId, ctx: Context, who: Reader) -> dict[str, Any]:
    """Each decision on the grant as recorded in SubscriptionRegistry: who decided, the
    EIP-712 data they signed, the signature and the transaction, so a third party can
    recover the signer and find the record on chain."""
    try:
        ctx.grants.get(grant_id, who.user)
    except GrantNotFound as error:
        raise _errors_as_http(error) from None
    items = []
    for stored in ctx.store.decisions(grant_id):
        decision = stored.decision
        items.append(
            {
                "status": decision.status,
                "decided_by": decision.decided_by,
                "provider": decision.provider,
                "consumer": decision.consumer,
                "topic": decision.topic,
                "timestamp": decision.timestamp,
                "signer": stored.signer,
                "signature": stored.signature,
                "transactionHash": stored.tx,
                "block": stored.block,
                "chain_id": stored.chain_id,
                "contract": stored.contract,
                "error": stored.error,
                "typed_data": (
                    typed_data(decision, stored.chain_id, stored.contract)
                    if stored.chain_id is not None and stored.contract is not None
                    else None
                ),
            }
        )
    return {"grant_id": grant_id, "decisions": items}
