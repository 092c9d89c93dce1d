"""ReadingStore summaries computed by the database: `series` (a chart's buckets) and
`device_activity` (the dashboard's device list)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from platone_bal.domain.grants import Slice
from platone_bal.domain.readings import format_time, parse_time
from platone_bal.domain.users import User
from platone_bal.ports import SeriesBucket, SeriesQuery, Store
from tests.contract.builders import (
    T0,
    cim_payload,
    message,
    minutes,
    pmu_message,
    rejected_message,
    save,
)

CODE = "0.26.0.0.1.1.12.0.0.0.0.0.0.0.0.224.3.72.0"


@pytest.fixture
def chart(store: Store, alice: User, bob: User) -> None:
    """alice m1 v over an hour from T0, in 10-minute buckets:

    bucket 0 (T0+0..10): 10 @0, 20 @3, 15 @7   -> count 3, min 10, max 20, avg 15, last 15
    bucket 1 (T0+10..20): -2.5 @10 (on the edge) -> one reading
    bucket 2: none
    bucket 3 (T0+30..40): 7 @39, 1 @31           -> last is @39 (latest measured), not latest saved
    bucket 5 (T0+50..60): 100 @59.99
    and beside it: alice m1 i, alice m2 v, bob m1 v in the same hour; alice m1 v at T0+60
    (the end, excluded) and at T0-1 (before).
    """
    records = [
        pmu_message(alice, "m1", T0 + minutes(0), [("v", "10"), ("i", "999")]),
        pmu_message(alice, "m1", T0 + minutes(3), [("v", "20")]),
        pmu_message(alice, "m1", T0 + minutes(7), [("v", "15")]),
        pmu_message(alice, "m1", T0 + minutes(10), [("v", "-2.5")]),
        pmu_message(alice, "m1", T0 + minutes(39), [("v", "7")]),
        pmu_message(alice, "m1", T0 + minutes(31), [("v", "1")]),
        pmu_message(alice, "m1", T0 + minutes(59.99), [("v", "100")]),
        pmu_message(alice, "m2", T0 + minutes(12), [("v", "555")]),
        pmu_message(bob, "m1", T0 + minutes(21), [("v", "777")]),
        pmu_message(alice, "m1", T0 + minutes(60), [("v", "888")]),
        pmu_message(alice, "m1", T0 - timedelta(seconds=1), [("v", "666")]),
    ]
    save(store, records[:4])
    save(store, records[4:])


def hour(points: int = 6, slices: tuple[Slice, ...] | None = None, **changes: Any) -> SeriesQuery:
    """alice's m1 v over the hour from T0, unless `changes` say otherwise."""
    query = SeriesQuery("alice", "m1", "v", T0, T0 + minutes(60), points, slices)
    return replace(query, **changes)


def summary(buckets: list[SeriesBucket]) -> list[tuple[datetime, int, float, float, float, float]]:
    return [(parse_time(b.start), b.count, b.min, b.max, b.avg, b.last) for b in buckets]


def test_buckets_summarise_the_readings(store: Store, chart: None) -> None:
    buckets = store.series(hour())
    assert [parse_time(b.start) for b in buckets] == [
        T0,
        T0 + minutes(10),
        T0 + minutes(30),
        T0 + minutes(50),
    ]
    assert [b.count for b in buckets] == [3, 1, 2, 1]
    assert [b.min for b in buckets] == [10.0, -2.5, 1.0, 100.0]
    assert [b.max for b in buckets] == [20.0, -2.5, 7.0, 100.0]
    assert [b.avg for b in buckets] == pytest.approx([15.0, -2.5, 4.0, 100.0])
    assert [b.last for b in buckets] == [15.0, -2.5, 7.0, 100.0]
    assert all(isinstance(b.start, str) and b.start.endswith("Z") for b in buckets)
    assert all(type(b.count) is int for b in buckets)
    assert all(isinstance(v, float) for b in buckets for v in (b.min, b.max, b.avg, b.last))


def test_one_bucket_for_the_whole_window(store: Store, chart: None) -> None:
    (bucket,) = store.series(hour(points=1))
    assert parse_time(bucket.start) == T0
    assert (bucket.count, bucket.min, bucket.max, bucket.last) == (7, -2.5, 100.0, 100.0)
    assert bucket.avg == pytest.approx((10 + 20 + 15 - 2.5 + 7 + 1 + 100) / 7)


def test_a_narrower_window(store: Store, chart: None) -> None:
    query = hour(points=2, since=T0 + minutes(10), until=T0 + minutes(40))
    assert summary(store.series(query)) == [
        (T0 + minutes(10), 1, -2.5, -2.5, -2.5, -2.5),
        (T0 + minutes(25), 2, 1.0, 7.0, 4.0, 7.0),
    ]


def test_nothing_to_chart(store: Store, chart: None) -> None:
    assert store.series(hour(device="m3")) == []
    assert store.series(hour(measurand="q")) == []
    assert store.series(hour(producer="carol")) == []
    (later,) = store.series(hour(points=1, since=T0 + minutes(60), until=T0 + minutes(120)))
    assert (later.count, later.last) == (1, 888.0)
    assert store.series(hour(since=T0 + minutes(61), until=T0 + minutes(120))) == []


def test_another_producers_device_of_the_same_name_is_apart(store: Store, chart: None) -> None:
    (bucket,) = store.series(hour(points=1, producer="bob"))
    assert (bucket.count, bucket.min, bucket.last) == (1, 777.0, 777.0)
    (bucket,) = store.series(hour(points=1, device="m2"))
    assert (bucket.count, bucket.max) == (1, 555.0)
    (bucket,) = store.series(hour(points=1, measurand="i"))
    assert (bucket.count, bucket.max) == (1, 999.0)


def test_slices_limit_the_series(store: Store, chart: None) -> None:
    whole = store.series(hour())
    assert store.series(hour(slices=None)) == whole
    assert store.series(hour(slices=())) == []
    assert store.series(hour(slices=(Slice("alice"),))) == whole
    assert store.series(hour(slices=(Slice("bob"),))) == []
    assert store.series(hour(slices=(Slice("alice", devices=frozenset({"m2"})),))) == []
    assert store.series(hour(slices=(Slice("alice", measurands=frozenset({"v"})),))) == whole
    assert (
        store.series(hour(slices=(Slice("bob"), Slice("alice", devices=frozenset({"m1"})))))
        == whole
    )
    windowed = store.series(
        hour(slices=(Slice("alice", since=T0 + minutes(5), until=T0 + minutes(35)),))
    )
    assert summary(windowed) == [
        (T0, 1, 15.0, 15.0, 15.0, 15.0),
        (T0 + minutes(10), 1, -2.5, -2.5, -2.5, -2.5),
        (T0 + minutes(30), 1, 1.0, 1.0, 1.0, 1.0),
    ]


def test_every_decimal_form_becomes_its_number(store: Store, alice: User) -> None:
    """Values stay the text received; a chart reads them as numbers, in every form the
    codecs accept (CIM text may have a sign, an exponent, no integer or fraction digits)."""
    forms = ["+5", ".5", "5.", "1e2", "-2.5E-1", "0011.50", "-0"]
    # one a minute, each in the middle of its own one-minute bucket
    save(
        store,
        [
            message(
                alice,
                cim_payload("m1", [(T0 + minutes(n + 0.5), v, CODE) for n, v in enumerate(forms)]),
            )
        ],
    )
    query = SeriesQuery("alice", "m1", CODE, T0, T0 + minutes(len(forms)), len(forms))
    assert [b.last for b in store.series(query)] == [5.0, 0.5, 5.0, 100.0, -0.25, 11.5, 0.0]


@pytest.mark.parametrize(
    ("width", "points"),
    [
        (timedelta(seconds=1), 60),
        (timedelta(minutes=1), 60),
        (timedelta(minutes=10), 6),
        (timedelta(seconds=45), 32),
        (timedelta(hours=1), 24),
        (timedelta(milliseconds=250), 40),
    ],
    ids=["1s", "1min", "10min", "45s", "1h", "250ms"],
)
def test_a_reading_on_a_bucket_edge_opens_that_bucket(
    store: Store, alice: User, width: timedelta, points: int
) -> None:
    """Each bucket is [start, start + width): a reading measured exactly at a bucket's
    start is in that bucket, never in the one before."""
    save(store, [pmu_message(alice, "m1", T0 + k * width, [("v", str(k))]) for k in range(points)])
    buckets = store.series(SeriesQuery("alice", "m1", "v", T0, T0 + points * width, points))
    assert summary(buckets) == [
        (T0 + k * width, 1, float(k), float(k), float(k), float(k)) for k in range(points)
    ]


# device activity


def test_device_activity(store: Store, alice: User, bob: User) -> None:
    eight, nine, ten, eleven = (T0 + timedelta(hours=h) for h in (0, 1, 2, 3))
    save(
        store,
        [
            pmu_message(alice, "m1", T0, [("v", "1"), ("i", "2")], received=eight),
            pmu_message(alice, "m2", T0, [("v", "3")], received=eight),
        ],
    )
    save(store, [pmu_message(alice, "m1", T0 + minutes(1), [("v", "4"), ("i", "5")], received=ten)])
    save(store, [pmu_message(bob, "m1", T0, [("v", "6")], received=eleven)])
    save(store, [rejected_message("alice", b"bad", ["malformed"], received=eleven)])
    assert store.device_activity("alice", format_time(nine)) == {
        "m1": (format_time(ten), 2),
        "m2": (format_time(eight), 0),
    }
    assert store.device_activity("alice", format_time(T0 - timedelta(hours=1))) == {
        "m1": (format_time(ten), 4),
        "m2": (format_time(eight), 1),
    }
    assert store.device_activity("alice", format_time(eleven)) == {
        "m1": (format_time(ten), 0),
        "m2": (format_time(eight), 0),
    }
    assert store.device_activity("bob", format_time(nine)) == {"m1": (format_time(eleven), 1)}
    assert store.device_activity("carol", format_time(nine)) == {}


def test_device_activity_follows_new_readings(store: Store, alice: User) -> None:
    first = T0 + timedelta(hours=1)
    save(store, [pmu_message(alice, "m1", T0, [("v", "1")], received=first)])
    assert store.device_activity("alice", format_time(T0)) == {"m1": (format_time(first), 1)}
    later = first + timedelta(minutes=30, microseconds=250)
    save(
        store, [pmu_message(alice, "m1", T0 + minutes(1), [("v", "2"), ("i", "3")], received=later)]
    )
    save(store, [pmu_message(alice, "m1", T0 + minutes(2), [("v", "4")], received=first)])  # late
    assert store.device_activity("alice", format_time(T0)) == {"m1": (format_time(later), 4)}


def test_device_activity_counts_from_the_start_of_the_hour_of_since(
    store: Store, alice: User
) -> None:
    """Arrivals are counted per hour as they are written: `since` counts from the start
    of its hour."""
    nine = T0 + timedelta(hours=1)
    arrivals = [nine - timedelta(minutes=1), nine, nine + timedelta(minutes=10)]
    for n, received in enumerate(arrivals):
        save(store, [pmu_message(alice, "m1", T0 + minutes(n), [("v", str(n))], received=received)])
    last = format_time(arrivals[-1])
    assert store.device_activity("alice", format_time(nine + timedelta(minutes=45))) == {
        "m1": (last, 2)
    }
    assert store.device_activity("alice", format_time(nine)) == {"m1": (last, 2)}
    assert store.device_activity("alice", format_time(nine - timedelta(seconds=1))) == {
        "m1": (last, 3)
    }
    assert store.device_activity("alice", format_time(nine + timedelta(hours=1))) == {
        "m1": (last, 0)
    }
