"""/v1/readings and /v1/rejections: what was stored and what was refused, page by page.

Who sees what: `api/access.py`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from platone_bal.api.access import access_of, may_read, query_slices
from platone_bal.api.audit import audit
from platone_bal.api.context import ApiContext
from platone_bal.api.cursors import decode_cursor, next_cursor
from platone_bal.api.deps import Context, Principal, Reader, RowId
from platone_bal.api.problems import ArchivedOnly
from platone_bal.api.semantic import LD_JSON, linked_data, wants_linked_data
from platone_bal.domain.readings import InvalidReading, parse_time
from platone_bal.domain.users import Role, User
from platone_bal.ports import ReadingQuery, RejectionQuery, StoredReading, StoredRejection
from platone_bal.services.archiver import archived_days

router = APIRouter(prefix="/v1", tags=["readings"])

MAX_PAGE = 1000
MAX_DATASET = 100_000
"""Most readings a dataset view (certification, transactions) covers at once."""


class ReadingPage(BaseModel):
    items: list[StoredReading]
    next_cursor: str | None
    archived_days: list[str] = Field(
        default_factory=list,
        description="Days the query covers whose readings are in archive files, not here "
        "(an admin restores them: POST /v1/archives/restore); empty when none",
    )


class RejectionPage(BaseModel):
    items: list[StoredRejection]
    next_cursor: str | None


def _time(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except InvalidReading as error:
        raise HTTPException(400, f"{name}: {error}") from None


class ReadingFilter(BaseModel):
    """Which readings: the same filters for /v1/readings and the seed's /scd/getData."""

    model_config = ConfigDict(populate_by_name=True)

    producer: str | None = None
    device: str | None = None
    measurand: str | None = None
    since: str | None = Field(
        default=None,
        alias="from",
        description="RFC 3339, inclusive",
        examples=["2019-09-13T00:00:00Z"],
    )
    until: str | None = Field(default=None, alias="to", description="RFC 3339, exclusive")
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, description="next_cursor of the previous page")
    order: Literal["log", "newest"] = Field(
        default="log",
        description="log: oldest first, in the order stored; newest: the latest first "
        "(a long-running node's recent data without paging through all of it)",
    )


class ReadingFilterBody(ReadingFilter):
    """The same filters as a JSON body: types as JSON gives them (`true` is no limit)."""

    model_config = ConfigDict(populate_by_name=True, strict=True)


def reading_query(
    ctx: ApiContext, user: User, wanted: ReadingFilter, after: int, limit: int
) -> ReadingQuery:
    """The store query for `wanted`, limited to what `user` may see; `after` is the
    decoded cursor (with order=newest: the id the page starts below)."""
    newest = wanted.order == "newest"
    return ReadingQuery(
        producer=wanted.producer,
        slices=query_slices(access_of(ctx, user), wanted.producer),
        device=wanted.device,
        measurand=wanted.measurand,
        since=_time("from", wanted.since),
        until=_time("to", wanted.until),
        after=0 if newest else after,
        before=(after or None) if newest else None,
        newest_first=newest,
        limit=limit,
    )


def whole_dataset(ctx: ApiContext, user: User, wanted: ReadingFilter) -> list[StoredReading]:
    """Every reading `user` may see that matches `wanted` (no paging: limit and cursor
    are ignored), at most MAX_DATASET; refused while days it covers are archived."""
    query = reading_query(ctx, user, wanted, 0, MAX_DATASET + 1)
    if days := archived_in(ctx, query.since, query.until):
        raise ArchivedOnly(days, whole=True)
    rows = ctx.store.readings(query)
    if len(rows) > MAX_DATASET:
        raise HTTPException(400, f"the query matches more than {MAX_DATASET} readings; narrow it")
    return rows


def find_readings(
    ctx: ApiContext, request: Request, who: Principal, wanted: ReadingFilter
) -> ReadingPage:
    """One page of the readings the caller may see that match `wanted`, in log order
    (the access is recorded in the audit log)."""
    kind = "n" if wanted.order == "newest" else "r"
    after = decode_cursor(kind, wanted.cursor)
    query = reading_query(ctx, who.user, wanted, after, wanted.limit)
    rows = ctx.store.readings(query)
    audit(ctx, request, who, "readings.read", (r.producer for r in rows), len(rows))
    days = archived_in(ctx, query.since, query.until)
    if days and not rows and wanted.cursor is None:
        raise ArchivedOnly(days)
    return ReadingPage(
        items=rows, next_cursor=next_cursor(kind, rows, wanted.limit), archived_days=days
    )


def archived_in(ctx: ApiContext, since: datetime | None, until: datetime | None) -> list[str]:
    """The archived days of the readings' log between `since` and `until` (exclusive)."""
    if ctx.lifecycle is None:
        return []
    last = None if until is None else (until - timedelta(microseconds=1)).date()
    first = None if since is None else since.date()
    return [
        day.isoformat() for day in archived_days(ctx.store, ctx.lifecycle.archiver.log, first, last)
    ]


_LINKED_DATA: dict[int | str, dict[str, Any]] = {
    200: {"content": {LD_JSON: {}}, "description": "With Accept: application/ld+json: "
          "JSON-LD on SAREF (SARGON for PMUs), each item linking its proof"},
}  # fmt: skip


@router.get("/readings", response_model=ReadingPage, responses=_LINKED_DATA)
def list_readings(
    ctx: Context, request: Request, who: Reader, wanted: Annotated[ReadingFilter, Query()]
) -> ReadingPage | JSONResponse:
    """Readings in log order (or newest first with `order=newest`); pass `next_cursor`
    back as `cursor` for the next page. `Accept: application/ld+json`: the same page as
    JSON-LD (SAREF measurements, SARGON PMUs), each with its proof's link."""
    found = find_readings(ctx, request, who, wanted)
    if wants_linked_data(request):
        return linked_data(
            request, found.items, next_cursor=found.next_cursor, archived_days=found.archived_days
        )
    return found


@router.get("/readings/{reading_id}", response_model=StoredReading, responses=_LINKED_DATA)
def get_reading(
    reading_id: RowId, request: Request, ctx: Context, who: Reader
) -> StoredReading | JSONResponse:
    """One reading the caller may see (JSON, or JSON-LD with Accept: application/ld+json)."""
    reading = ctx.store.reading(reading_id)
    if reading is None or not may_read(access_of(ctx, who.user), reading):
        raise HTTPException(404, f"no reading {reading_id} visible to you")
    audit(ctx, request, who, "readings.read", [reading.producer], 1)
    if wants_linked_data(request):
        return linked_data(request, [reading])
    return reading


@router.get("/rejections", response_model=RejectionPage)
def list_rejections(
    ctx: Context,
    who: Reader,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: str | None = None,
) -> RejectionPage:
    """Refused payloads and readings with their reasons: admin all, a producer its own."""
    user = who.user
    if user.role is Role.CONSUMER:
        raise HTTPException(403, "rejections are visible to admins and their producers")
    query = RejectionQuery(
        producer=None if user.role is Role.ADMIN else user.username,
        after=decode_cursor("j", cursor),
        limit=limit,
    )
    rows = ctx.store.rejections(query)
    return RejectionPage(items=rows, next_cursor=next_cursor("j", rows, limit))
