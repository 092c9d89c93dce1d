"""ReadingStore queries: filters, time bounds, keyset cursors both ways, what a caller
may see (slices), single readings and the log's leaves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone

import pytest

from platone_bal.domain.grants import Slice
from platone_bal.domain.readings import format_time
from platone_bal.domain.users import User
from platone_bal.ports import MAX_ROW_ID, ReadingQuery, RejectionQuery, Store, StoredReading
from tests.contract.builders import (
    LOG,
    T0,
    cim_payload,
    leaves_of,
    message,
    minutes,
    pmu_message,
    pmu_payload,
    save,
)


@dataclass(frozen=True)
class Made:
    """A reading the test saved; each has a distinct value, so lists of values name them."""

    producer: str
    device: str
    minute: int
    measurand: str
    value: str


@pytest.fixture
def made(store: Store, alice: User, bob: User) -> list[Made]:
    """18 readings of two producers (both have a device m1), in three batches, in this
    order: alice m1 v/i at minutes 0-5, alice m2 v at 0 and 10, bob m1 v/i at 1 and 3."""
    plan = [
        [("alice", "m1", 0), ("alice", "m2", 0), ("alice", "m1", 1), ("bob", "m1", 1)],
        [("alice", "m1", 2), ("alice", "m1", 3), ("bob", "m1", 3)],
        [("alice", "m1", 4), ("alice", "m2", 10), ("alice", "m1", 5)],
    ]
    users = {"alice": alice, "bob": bob}
    out: list[Made] = []
    for batch in plan:
        records = []
        for producer, device, minute in batch:
            measurands = ["v"] if device == "m2" else ["v", "i"]
            values = []
            for measurand in measurands:
                value = str(len(out))
                out.append(Made(producer, device, minute, measurand, value))
                values.append((measurand, value))
            records.append(pmu_message(users[producer], device, T0 + minutes(minute), values))
        save(store, records)
    assert len(out) == 18
    return out


def values(readings: list[StoredReading]) -> list[str]:
    return [r.value for r in readings]


def expect(made: list[Made], **where: object) -> list[str]:
    return [m.value for m in made if all(getattr(m, key) == value for key, value in where.items())]


def test_every_reading_in_the_order_it_was_stored(store: Store, made: list[Made]) -> None:
    every = store.readings(ReadingQuery(limit=100))
    assert values(every) == [m.value for m in made]
    assert [r.index for r in every] == list(range(18))
    ids = [r.id for r in every]
    assert ids == sorted(ids) and len(set(ids)) == 18
    assert all(r.log == LOG for r in every)
    assert [r.time for r in every] == [format_time(T0 + minutes(m.minute)) for m in made]


def test_filters(store: Store, made: list[Made]) -> None:
    def query(**filters: object) -> list[str]:
        return values(store.readings(ReadingQuery(limit=100, **filters)))  # type: ignore[arg-type]

    assert query(producer="alice") == expect(made, producer="alice")
    assert query(producer="bob") == expect(made, producer="bob")
    assert query(device="m1") == expect(made, device="m1")  # of both producers
    assert query(producer="bob", device="m1") == expect(made, producer="bob", device="m1")
    assert query(producer="alice", device="m2") == expect(made, producer="alice", device="m2")
    assert query(measurand="i") == expect(made, measurand="i")
    assert query(producer="alice", device="m1", measurand="v") == expect(
        made, producer="alice", device="m1", measurand="v"
    )
    assert query(producer="carol") == []
    assert query(device="m3") == []
    assert query(producer="bob", device="m2") == []


def test_time_bounds_include_since_and_exclude_until(store: Store, made: list[Made]) -> None:
    since, until = T0 + minutes(2), T0 + minutes(4)
    found = store.readings(ReadingQuery(since=since, until=until, limit=100))
    assert values(found) == [m.value for m in made if 2 <= m.minute < 4]
    assert values(store.readings(ReadingQuery(since=T0 + minutes(5), limit=100))) == [
        m.value for m in made if m.minute >= 5
    ]
    assert values(store.readings(ReadingQuery(until=T0 + minutes(1), limit=100))) == [
        m.value for m in made if m.minute < 1
    ]
    assert store.readings(ReadingQuery(since=T0 + minutes(11), limit=100)) == []
    assert store.readings(ReadingQuery(since=until, until=since, limit=100)) == []
    # bounds in another time zone mean the same instants
    east = timezone(timedelta(hours=2))
    assert (
        store.readings(
            ReadingQuery(since=since.astimezone(east), until=until.astimezone(east), limit=100)
        )
        == found
    )


def test_time_bounds_to_the_microsecond(store: Store, alice: User) -> None:
    moment = T0 + timedelta(microseconds=1)
    save(store, [pmu_message(alice, "m1", moment, [("v", "1")])])
    assert store.readings(ReadingQuery(since=moment, limit=10)) != []
    assert store.readings(ReadingQuery(since=moment + timedelta(microseconds=1), limit=10)) == []
    assert store.readings(ReadingQuery(until=moment, limit=10)) == []
    assert store.readings(ReadingQuery(until=moment + timedelta(microseconds=1), limit=10)) != []


def test_the_keyset_cursor_pages_through_everything_once(store: Store, made: list[Made]) -> None:
    seen: list[StoredReading] = []
    after = 0
    while page := store.readings(ReadingQuery(after=after, limit=5)):
        assert len(page) <= 5
        seen += page
        after = page[-1].id
    assert values(seen) == [m.value for m in made]
    first = store.readings(ReadingQuery(limit=5))
    assert len(first) == 5
    rest = store.readings(ReadingQuery(producer="alice", after=first[-1].id, limit=100))
    assert values(rest) == [v for v in expect(made, producer="alice") if int(v) > 4]


def test_newest_first_pages_backwards_with_before(store: Store, made: list[Made]) -> None:
    latest = store.readings(ReadingQuery(newest_first=True, limit=5))
    assert values(latest) == [m.value for m in reversed(made)][:5]
    ids = [r.id for r in latest]
    assert ids == sorted(ids, reverse=True)
    seen: list[StoredReading] = []
    before: int | None = None
    while page := store.readings(ReadingQuery(newest_first=True, before=before, limit=4)):
        seen += page
        before = page[-1].id
    assert values(seen) == [m.value for m in reversed(made)]
    every = store.readings(ReadingQuery(limit=100))
    middle = every[9].id
    older = store.readings(ReadingQuery(newest_first=True, before=middle, limit=3))
    assert older == list(reversed(every[6:9]))
    assert store.readings(ReadingQuery(newest_first=True, before=every[0].id, limit=3)) == []


def test_newest_first_with_filters(store: Store, made: list[Made]) -> None:
    bobs = store.readings(ReadingQuery(producer="bob", newest_first=True, limit=3))
    assert values(bobs) == list(reversed(expect(made, producer="bob")))[:3]
    window = store.readings(
        ReadingQuery(
            device="m1",
            measurand="v",
            since=T0 + minutes(1),
            until=T0 + minutes(4),
            newest_first=True,
            limit=100,
        )
    )
    assert values(window) == [
        m.value
        for m in reversed(made)
        if m.device == "m1" and m.measurand == "v" and 1 <= m.minute < 4
    ]
    scoped = store.readings(
        ReadingQuery(slices=(Slice("alice", devices=frozenset({"m2"})),), newest_first=True)
    )
    assert values(scoped) == list(reversed(expect(made, producer="alice", device="m2")))
    assert store.readings(ReadingQuery(slices=(), newest_first=True)) == []


def test_slices_limit_what_is_seen(store: Store, made: list[Made]) -> None:
    def seen(*slices: Slice, **filters: object) -> list[str]:
        query = ReadingQuery(limit=100, slices=slices, **filters)  # type: ignore[arg-type]
        return values(store.readings(query))

    assert values(store.readings(ReadingQuery(limit=100, slices=None))) == [m.value for m in made]
    assert seen() == []  # no slice at all: nothing
    assert seen(Slice("alice")) == expect(made, producer="alice")
    assert seen(Slice("alice", devices=frozenset({"m2"}))) == expect(
        made, producer="alice", device="m2"
    )
    assert seen(Slice("alice", devices=frozenset())) == []
    assert seen(Slice("alice", measurands=frozenset())) == []
    assert seen(Slice("alice", since=T0 + minutes(1), until=T0 + minutes(3))) == [
        m.value for m in made if m.producer == "alice" and 1 <= m.minute < 3
    ]
    union = seen(
        Slice("alice", measurands=frozenset({"i"})),
        Slice("bob", devices=frozenset({"m1"}), since=T0 + minutes(3)),
    )
    assert union == [
        m.value
        for m in made
        if (m.producer == "alice" and m.measurand == "i") or (m.producer == "bob" and m.minute >= 3)
    ]
    assert seen(Slice("alice"), producer="bob") == []
    assert seen(Slice("alice"), Slice("bob"), producer="bob") == expect(made, producer="bob")
    assert seen(Slice("carol")) == []
    # a slice of many devices (a big grant) still works
    many = frozenset({f"meter-{n}" for n in range(2000)} | {"m2"})
    assert seen(Slice("alice", devices=many)) == expect(made, producer="alice", device="m2")
    assert seen(Slice("alice", devices=many), Slice("bob", measurands=frozenset({"v"}))) == [
        m.value
        for m in made
        if (m.producer == "alice" and m.device == "m2")
        or (m.producer == "bob" and m.measurand == "v")
    ]


def test_slices_with_the_cursor(store: Store, made: list[Made]) -> None:
    mine = (Slice("bob"),)
    first = store.readings(ReadingQuery(slices=mine, limit=2))
    rest = store.readings(ReadingQuery(slices=mine, after=first[-1].id, limit=100))
    assert values(first + rest) == expect(made, producer="bob")


def test_one_reading_by_id(store: Store, made: list[Made]) -> None:
    every = store.readings(ReadingQuery(limit=100))
    for stored in (every[0], every[7], every[-1]):
        assert store.reading(stored.id) == stored
    assert store.reading(every[-1].id + 1000) is None


@pytest.mark.parametrize("reading_id", [0, -1, MAX_ROW_ID, MAX_ROW_ID + 1, 2**64, -(2**64)])
def test_ids_that_name_no_reading(store: Store, made: list[Made], reading_id: int) -> None:
    assert store.reading(reading_id) is None


def test_readings_leaves_and_leaf_bytes_of_a_log(store: Store, alice: User) -> None:
    records = [
        pmu_message(alice, "m1", T0 + minutes(n), [("v", str(n)), ("i", "0")]) for n in range(4)
    ]
    save(store, records[:3])
    save(store, [pmu_message(alice, "m1", T0, [("v", "91")], log="bal-other")], "bal-other")
    save(store, records[3:])
    leaves = leaves_of(records)
    assert store.leaves(LOG, 0, 100) == list(enumerate(leaves))
    assert store.leaves(LOG, 3, 2) == [(3, leaves[3]), (4, leaves[4])]
    assert store.leaves(LOG, 8, 10) == []
    assert store.leaves("bal-none", 0, 10) == []
    assert [store.leaf_bytes(LOG, i) for i in range(8)] == leaves
    assert store.leaf_bytes(LOG, 8) is None
    assert store.leaf_bytes("bal-other", 1) is None
    assert store.leaf_bytes("bal-none", 0) is None
    in_log = store.readings_in_log(LOG, 2, 3)
    assert [r.index for r in in_log] == [2, 3, 4]
    assert [r.value for r in in_log] == ["1", "0", "2"]
    assert in_log == store.readings(ReadingQuery(limit=100))[2:5]
    assert store.readings_in_log(LOG, 8, 10) == []
    (other,) = store.readings_in_log("bal-other", 0, 10)
    assert (other.log, other.index, other.value) == ("bal-other", 0, "91")


def test_text_is_kept_exactly(store: Store, alice: User) -> None:
    pmu = message(alice, pmu_payload("pmu:7.b", T0, [("température", "11.0400")], unit="°C"))
    cim = message(
        alice,
        cim_payload(
            "11111111",
            [(T0, "-3.45e2", "0.26.0.0.1.1.12.0.0.0.0.0.0.0.0.224.3.72.0")],
        ),
    )
    save(store, [pmu, cim])
    first, second = store.readings(ReadingQuery(limit=10))
    assert (first.device, first.measurand, first.value, first.unit) == (
        "pmu:7.b",
        "température",
        "11.0400",
        "°C",
    )
    assert (second.value, second.unit, second.format) == ("-3.45e2", None, "cim-61968-9")
    assert second.attrs == cim.readings[0].leaf["attrs"]
    assert second.attrs["usagePoint"] == "111111"
    assert second.message == cim.digest
    assert store.leaf_bytes(LOG, 0) == pmu.readings[0].leaf_bytes
    assert store.leaf_bytes(LOG, 1) == cim.readings[0].leaf_bytes


def test_cursors_at_the_end_of_the_id_range(store: Store, made: list[Made]) -> None:
    """The API passes cursors up to MAX_ROW_ID: past every row, never an error."""
    assert store.readings(ReadingQuery(after=MAX_ROW_ID, limit=10)) == []
    latest = store.readings(ReadingQuery(newest_first=True, before=MAX_ROW_ID, limit=3))
    assert latest == store.readings(ReadingQuery(newest_first=True, limit=3))
    assert values(latest) == [m.value for m in reversed(made)][:3]
    assert store.rejections(RejectionQuery(after=MAX_ROW_ID)) == []
    assert store.anchors(after=MAX_ROW_ID) == []
    assert store.raw_messages(MAX_ROW_ID, 10) == []
