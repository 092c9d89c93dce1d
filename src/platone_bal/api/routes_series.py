"""GET /v1/series: one device's measurand over a time range, down-sampled by the database.

A chart of a long-running node needs the shape of a day or a year, not 8,640 or
3,000,000 readings: the store summarises each bucket (count, min, max, avg, last), so
the answer has at most `points` rows whatever the range holds. Values here are numbers
for drawing; the certified value of a reading stays its string in /v1/readings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from platone_bal.api.access import access_of, query_slices
from platone_bal.api.audit import audit
from platone_bal.api.deps import Context, Reader
from platone_bal.api.problems import ArchivedOnly
from platone_bal.api.routes_readings import archived_in
from platone_bal.domain.readings import InvalidReading, format_time, parse_time
from platone_bal.ports import SeriesBucket, SeriesQuery

router = APIRouter(prefix="/v1", tags=["readings"])

MAX_POINTS = 2000


class Series(BaseModel):
    producer: str
    device: str
    measurand: str
    since: str = Field(serialization_alias="from")
    until: str = Field(serialization_alias="to")
    bucket_seconds: float
    buckets: list[SeriesBucket]
    """Oldest first; buckets without readings are left out."""
    archived_days: list[str] = Field(
        default_factory=list,
        description="Days of the window whose readings are archived, not counted here",
    )


def _time(name: str, text: str) -> datetime:
    try:
        return parse_time(text)
    except InvalidReading as error:
        raise HTTPException(400, f"{name}: {error}") from None


@router.get("/series", response_model=Series, response_model_by_alias=True)
def series(
    ctx: Context,
    request: Request,
    who: Reader,
    producer: str,
    device: str,
    measurand: str,
    since: Annotated[str, Query(alias="from", description="RFC 3339, inclusive")],
    until: Annotated[str, Query(alias="to", description="RFC 3339, exclusive")],
    points: Annotated[int, Query(ge=1, le=MAX_POINTS)] = 200,
) -> Series:
    """min/max/avg/last and count per time bucket of one device's measurand, for the
    readings the caller may see."""
    start, end = _time("from", since), _time("to", until)
    if end <= start:
        raise HTTPException(400, "`to` must be after `from`")
    query = SeriesQuery(
        producer=producer,
        device=device,
        measurand=measurand,
        since=start,
        until=end,
        points=points,
        slices=query_slices(access_of(ctx, who.user), producer),
    )
    buckets = ctx.store.series(query)
    audit(ctx, request, who, "series.read", [producer], sum(b.count for b in buckets))
    days = archived_in(ctx, start, end)
    if days and not buckets:
        raise ArchivedOnly(days)
    return Series(
        producer=producer,
        device=device,
        measurand=measurand,
        since=format_time(start),
        until=format_time(end),
        bucket_seconds=(end - start).total_seconds() / points,
        buckets=buckets,
        archived_days=days,
    )
