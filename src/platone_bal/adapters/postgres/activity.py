"""Summaries the database computes: a producer's device activity, a measurand's series.

`device_activity` never reads the producer's readings: counts come from the
`device_hours` counters (from the start of the hour `since` falls in, as the port
says) and the latest arrival from `device_last`, both kept by the write transaction.

`series` groups one device's measurand into `points` equal buckets in SQL; the bucket
of a reading is floor((t - since) * points / (until - since)) in exact numeric
arithmetic on microseconds, so a reading on a bucket's edge falls in the later bucket
whatever the width.
"""

from __future__ import annotations

from typing import Any

from platone_bal.adapters.postgres.base import PoolUser, rfc3339, unavailable_on_faults
from platone_bal.adapters.postgres.readings import slices_clause
from platone_bal.adapters.series_buckets import bucket, span_micros
from platone_bal.ports import SeriesBucket, SeriesQuery


@unavailable_on_faults
class ActivityQueries(PoolUser):
    """ReadingStore's `device_activity` and `series`."""

    def device_activity(self, producer: str, since: str) -> dict[str, tuple[str, int]]:
        hour = rfc3339(since).replace(minute=0, second=0, microsecond=0)
        with self._pool.connection() as conn:
            last = conn.execute(
                "SELECT device, received FROM device_last WHERE producer = %s", (producer,)
            ).fetchall()
            counts: dict[str, int] = {
                device: int(count)
                for device, count in conn.execute(
                    "SELECT device, sum(readings) FROM device_hours"
                    " WHERE producer = %s AND hour >= %s GROUP BY device",
                    (producer, hour),
                )
            }
        return {device: (received, counts.get(device, 0)) for device, received in last}

    def series(self, query: SeriesQuery) -> list[SeriesBucket]:
        span = span_micros(query)
        if span == 0 or (query.slices is not None and not query.slices):
            return []
        clauses = [
            "producer = %s",
            "device = %s",
            "measurand = %s",
            "time_at >= %s",
            "time_at < %s",
        ]
        params: list[Any] = [
            query.producer,
            query.device,
            query.measurand,
            query.since,
            query.until,
        ]
        if query.slices is not None:
            where, values = slices_clause(query.slices)
            clauses.append(where)
            params.extend(values)
        rows = self._all(
            "SELECT bucket, count(*), min(number), max(number), avg(number),"  # noqa: S608
            " (array_agg(number ORDER BY time_at DESC, id DESC))[1]"
            " FROM (SELECT div((extract(epoch FROM time_at) - extract(epoch FROM %s::timestamptz))"
            " * 1000000 * %s, %s)::bigint AS bucket, number, time_at, id"
            f" FROM readings WHERE {' AND '.join(clauses)}) AS r"
            " GROUP BY bucket ORDER BY bucket",
            (query.since, query.points, span, *params),
        )
        return [bucket(query, span, *row) for row in rows]
