"""The bucket rule of `ReadingStore.series`, one for both stores.

A query's range is `points` buckets of (until - since) / points, counted in whole
microseconds so a reading on a bucket's edge opens that bucket (floating-point days
put it in the one before). Each store's SQL numbers the buckets with this width; what
a bucket is called and holds is decided here.
"""

from __future__ import annotations

from datetime import timedelta

from platone_bal.domain.readings import format_time
from platone_bal.ports import SeriesBucket, SeriesQuery

MICROSECOND = timedelta(microseconds=1)


def span_micros(query: SeriesQuery) -> int:
    """The query's range in whole microseconds; 0 when it holds no bucket."""
    if query.points < 1 or query.until <= query.since:
        return 0
    return (query.until - query.since) // MICROSECOND


def bucket(
    query: SeriesQuery, span: int, number: int, count: int, low: float, high: float,
    mean: float, last: float,
) -> SeriesBucket:  # fmt: skip
    """Bucket `number` of the query (0 is the one starting at `since`) and its summary."""
    return SeriesBucket(
        start=format_time(query.since + MICROSECOND * (number * span // query.points)),
        count=int(count),
        min=float(low),
        max=float(high),
        avg=float(mean),
        last=float(last),
    )
