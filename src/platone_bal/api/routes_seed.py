"""The field trials' endpoint names, on the same data and rules as /v1 (docs/api.md).

The seed sent JSON bodies with GET; each route accepts that, the same call as POST,
and (where the seed used them) query parameters. A body, when given, wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from platone_bal.api.access import access_of, may_read
from platone_bal.api.audit import audit
from platone_bal.api.cursors import decode_cursor, encode_cursor
from platone_bal.api.deps import Context, Reader, Verifier
from platone_bal.api.routes_readings import (
    ReadingFilter,
    ReadingFilterBody,
    ReadingPage,
    find_readings,
    whole_dataset,
)
from platone_bal.ports import StoredReading
from platone_bal.services.transactions import (
    anchor_json,
    certified_by_transaction,
    transactions_for,
)
from platone_bal.services.validation import check_reading, locate

router = APIRouter(tags=["seed-compatible"])
Handler = TypeVar("Handler", bound=Callable[..., Any])


def get_and_post(path: str, **options: Any) -> Callable[[Handler], Handler]:
    """Register a handler for GET (the seed's, with a body) and POST, each with its own
    OpenAPI operation id."""

    def register(handler: Handler) -> Handler:
        router.get(path, operation_id=f"{handler.__name__}_get", **options)(handler)
        router.post(path, operation_id=f"{handler.__name__}_post", **options)(handler)
        return handler

    return register


DataBody = Annotated[
    dict[str, Any] | list[dict[str, Any]],
    Body(
        description="A reading as /scd/getData returns it (log and index, or id, plus the "
        'fields to check), a list of them, or {"items": [...]}',
        examples=[{"log": "bal-main", "index": 0, "device": "11111111", "value": "11.04"}],
    ),
]


def _items(data: dict[str, Any] | list[dict[str, Any]]) -> list[Any]:
    if isinstance(data, list):
        items: list[Any] = data
    elif isinstance(data.get("items"), list):
        items = data["items"]
    else:
        items = [data]
    if not items:
        raise HTTPException(422, "no readings given")
    if len(items) > 1000:
        raise HTTPException(422, "at most 1000 readings per call")
    return items


@get_and_post("/scd/getData", response_model=ReadingPage)
def get_data(
    request: Request,
    ctx: Context,
    who: Reader,
    wanted: Annotated[ReadingFilter, Query()],
    body: Annotated[ReadingFilterBody | None, Body(description="The seed's query object")] = None,
) -> ReadingPage:
    """Readings matching a query object (same as GET /v1/readings)."""
    return find_readings(ctx, request, who, body or wanted)


@get_and_post(
    "/bap/validateData",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"example": "OK"}}}},
)
def validate_data(
    request: Request, ctx: Context, who: Verifier, data: DataBody
) -> PlainTextResponse:
    """`OK` when every reading given is exactly what was certified and anchored on chain,
    else `KO`; the `BAL-Reason` header says why (POST /v1/verify gives every detail)."""
    lookup = ctx.anchor_lookup()
    access = access_of(ctx, who.user)
    items = _items(data)
    audit(ctx, request, who, "data.validate", (), len(items))
    for item in items:
        verdict = check_reading(ctx.store, item, lookup, lambda reading: may_read(access, reading))
        if verdict.status != "valid":
            return PlainTextResponse("KO", headers={"BAL-Reason": _header(verdict.reason)})
    return PlainTextResponse("OK")


class OwnerAnswer(BaseModel):
    owner: str = Field(description="EIP-55 wallet of the data's owner, as certified")
    producer: str


@get_and_post("/bap/getOwner", response_model=OwnerAnswer)
def get_owner(request: Request, ctx: Context, who: Verifier, data: DataBody) -> OwnerAnswer:
    """The certified owner of the readings given (they must match their certified leaf)."""
    lookup = ctx.anchor_lookup()
    access = access_of(ctx, who.user)

    def visible(reading: StoredReading) -> bool:
        return may_read(access, reading)

    items = _items(data)
    owners: set[tuple[str, str]] = set()
    for item in items:
        verdict = check_reading(ctx.store, item, lookup, visible)
        if verdict.status == "invalid":
            raise HTTPException(404, f"not certified data: {verdict.reason}")
        reading = locate(ctx.store, item, visible)
        assert reading is not None
        owners.add((reading.owner, reading.producer))
    if len(owners) != 1:
        raise HTTPException(422, "the readings belong to more than one owner; ask one at a time")
    ((owner, producer),) = owners
    audit(ctx, request, who, "data.owner", [producer], len(items))
    return OwnerAnswer(owner=owner, producer=producer)


@get_and_post(
    "/bap/getTransactions",
)
def get_transactions(
    request: Request,
    ctx: Context,
    who: Reader,
    wanted: Annotated[ReadingFilter, Query()],
    body: Annotated[ReadingFilterBody | None, Body(description="The seed's query object")] = None,
) -> dict[str, Any]:
    """The anchor transactions that certified the readings matching the query, each with
    its data set's Data Certification (hashedData, owner, dataset)."""
    wanted = body or wanted
    readings = whole_dataset(ctx, who.user, wanted)
    dataset = {
        key: value
        for key, value in wanted.model_dump(by_alias=True).items()
        if value is not None and key not in ("limit", "cursor", "order")
    }
    audit(ctx, request, who, "transactions.read", (r.producer for r in readings), len(readings))
    return transactions_for(ctx.store, readings, dataset)


@router.get("/api/certification/getByTransaction")
def get_by_transaction(
    request: Request,
    ctx: Context,
    who: Reader,
    transaction: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{64}$")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The data an anchor transaction brought on chain (the readings between the previous
    anchor's size and its own), page by page; only readings you may see are listed."""
    start = decode_cursor("t", cursor)
    found = certified_by_transaction(ctx.store, transaction, start, limit)
    if found is None:
        raise HTTPException(404, f"no anchor transaction {transaction}")
    anchor, first, readings = found
    access = access_of(ctx, who.user)
    last = readings[-1].index + 1 if readings else anchor.size
    visible = [r for r in readings if may_read(access, r)]
    audit(ctx, request, who, "transaction.read", (r.producer for r in visible), len(visible))
    return {
        **anchor_json(anchor),
        "first_index": first,
        "items": visible,
        "next_cursor": encode_cursor("t", last) if last < anchor.size else None,
    }


def _header(text: str) -> str:
    """A reason fit for an HTTP header: one line of visible ASCII."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)[:300]
