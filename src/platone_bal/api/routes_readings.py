"""/v1/readings and /v1/rejections: what was stored and what was refused, page by page.

Who sees what: an admin everything, a producer its own data. Consumers will see what a
producer's grant covers; until grants exist they see nothing (fail closed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from platone_bal.api.cursors import decode_cursor, next_cursor
from platone_bal.api.deps import Context, Reader
from platone_bal.domain.readings import InvalidReading, parse_time
from platone_bal.domain.users import Role, User
from platone_bal.ports import ReadingQuery, RejectionQuery, StoredReading, StoredRejection

router = APIRouter(prefix="/v1", tags=["readings"])

MAX_PAGE = 1000


class ReadingPage(BaseModel):
    items: list[StoredReading]
    next_cursor: str | None


class RejectionPage(BaseModel):
    items: list[StoredRejection]
    next_cursor: str | None


def _visible_producer(user: User, wanted: str | None) -> str | bool | None:
    """The producer filter to apply, None for all, or False when nothing is visible."""
    if user.role is Role.ADMIN:
        return wanted
    if user.role is Role.PRODUCER:
        if wanted not in (None, user.username):
            raise HTTPException(403, f"no access to the data of {wanted!r}")
        return user.username
    if wanted is not None:
        raise HTTPException(403, f"no accepted grant for the data of {wanted!r}")
    return False


def _time(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except InvalidReading as error:
        raise HTTPException(400, f"{name}: {error}") from None


@router.get("/readings", response_model=ReadingPage)
def list_readings(
    ctx: Context,
    who: Reader,
    producer: str | None = None,
    device: str | None = None,
    measurand: str | None = None,
    since: Annotated[
        str | None,
        Query(alias="from", description="RFC 3339, inclusive", examples=["2019-09-13T00:00:00Z"]),
    ] = None,
    until: Annotated[str | None, Query(alias="to", description="RFC 3339, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: str | None = None,
) -> ReadingPage:
    """Readings in log order; pass `next_cursor` back as `cursor` for the next page."""
    visible = _visible_producer(who.user, producer)
    if visible is False:
        return ReadingPage(items=[], next_cursor=None)
    query = ReadingQuery(
        producer=visible if isinstance(visible, str) else None,
        device=device,
        measurand=measurand,
        since=_time("from", since),
        until=_time("to", until),
        after=decode_cursor("r", cursor),
        limit=limit,
    )
    rows = ctx.store.readings(query)
    return ReadingPage(items=rows, next_cursor=next_cursor("r", rows, limit))


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
