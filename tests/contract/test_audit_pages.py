"""`bal audit` with its records read in small pages, checked by worker processes, on
every backend: what it finds, and the words it finds it in, are those of an audit in
one process; and the fast path (a leaf matched against its columns as bytes) lets
nothing through that the full check of a record would refuse.

Each test edits the database with plain SQL, as an operator with it in hand could.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from platone_bal.domain.merkle import SHA3_256, tree_root
from platone_bal.domain.users import User
from platone_bal.ports import Store
from platone_bal.services.audit import AuditReport, Pages, StoreOpener, audit_log
from platone_bal.services.audit import pages as checked_apart
from platone_bal.services.audit import workers as worker_pool
from platone_bal.services.audit.pages import check_page, first_inside
from platone_bal.services.audit.tree import LogPass
from tests.contract.builders import LOG, T0, make_anchor, minutes, pmu_message, save, signed

SIZE = 15
"""Readings in the log: five pages of 3, so that workers check most of them."""


@pytest.fixture
def opener(store: Store, request: pytest.FixtureRequest, tmp_path: Path) -> StoreOpener:
    """Opens another store on the test's database, in a worker process (it pickles)."""
    if request.node.callspec.params["open_store"] == "sqlite":
        from platone_bal.adapters.sqlite import SqliteStore

        return partial(SqliteStore, tmp_path / "scd.sqlite3")
    from platone_bal.adapters.postgres import PostgresStore

    return partial(PostgresStore, request.getfixturevalue("postgres_url"), max_size=2)


@pytest.fixture
def log(store: Store, alice: User) -> int:
    """SIZE readings in five batches, a checkpoint at every size and anchors at sizes
    inside pages and at their ends: every root the pages must give is checked."""
    for batch in range(5):
        values = [(f"q{n}", str(batch * 10 + n)) for n in range(3)]
        save(store, [pmu_message(alice, f"m{batch}", T0 + minutes(batch), values)])
    nodes = store.nodes(LOG)
    for size in range(1, SIZE + 1):
        store.add_checkpoint(signed(LOG, size, tree_root(SHA3_256, nodes, size)))
    for size in (5, 9, 13):
        store.add_anchor(make_anchor(LOG, size, tree_root(SHA3_256, nodes, size)))
    assert store.log_size(LOG) == SIZE
    return SIZE


def tamper(store: Store, sql: str, *params: Any) -> None:
    """One edit with plain SQL (`?` marks a parameter); it must change a row."""
    if type(store).__name__ == "SqliteStore":
        with closing(sqlite3.connect(store.path)) as db:  # type: ignore[attr-defined]
            changed = db.execute(sql, params).rowcount
            db.commit()
    else:
        with store._pool.connection() as conn:  # type: ignore[attr-defined]
            changed = conn.execute(sql.replace("?", "%s"), params).rowcount
    assert changed > 0, sql


def both(store: Store, opener: StoreOpener) -> AuditReport:
    """The audit in one process and in pages of 3 checked by 2 workers: the same."""
    alone = audit_log(store, LOG, None)
    apart = audit_log(store, LOG, None, pages=Pages(3, 2, opener, wait_for_workers=True))
    assert (apart.problem, apart.bad_index) == (alone.problem, alone.bad_index)
    assert (apart.readings, apart.checkpoints) == (alone.readings, alone.checkpoints)
    return apart


def test_workers_check_every_page_of_a_healthy_log(
    store: Store, opener: StoreOpener, log: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = both(store, opener)
    assert report.ok, report.problem
    assert (report.readings, report.checkpoints) == (SIZE, SIZE)
    here: list[object] = []
    done_here = worker_pool.done_here
    monkeypatch.setattr(worker_pool, "done_here", lambda *a: here.append(a[1]) or done_here(*a))
    by_record = LogPass._record_by_record
    monkeypatch.setattr(LogPass, "_record_by_record", lambda *a: here.append(a) or by_record(*a))
    assert audit_log(store, LOG, None, pages=Pages(3, 2, opener, wait_for_workers=True)).ok
    assert here == []  # no page, of records or of messages, was checked in this process


def test_a_clean_page_gives_the_nodes_inside_it(store: Store, log: int) -> None:
    for start, stop in ((0, 8), (3, 6), (5, 13), (0, SIZE)):
        levels = check_page(store, LOG, start, stop)
        assert levels is not None
        for level, joined in enumerate(levels):
            first = first_inside(start, level)
            stored = dict(store.raw_nodes(LOG, level, first, stop >> level))
            assert joined == b"".join(stored[i] for i in range(first, stop >> level))  # type: ignore[misc]
        assert len(levels) == max(
            level + 1 for level in range(5) if first_inside(start, level) < stop >> level
        )


def test_the_first_of_two_tampered_pages_is_the_finding(
    store: Store, opener: StoreOpener, log: int
) -> None:
    tamper(store, "UPDATE readings SET value = '99' WHERE log = ? AND idx = ?", LOG, 13)
    report = both(store, opener)
    assert (report.bad_index, report.problem) == (
        13,
        "value: stored '99', certified leaf says '41'",
    )
    tamper(store, "UPDATE readings SET value = '98' WHERE log = ? AND idx = ?", LOG, 4)
    report = both(store, opener)
    assert (report.bad_index, report.problem) == (4, "value: stored '98', certified leaf says '11'")


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [("device", "m9", "'m0'"), ("unit", None, "'V'"), ("received", "x", "'2026-03-01T09:00")],
)
def test_a_column_changed_alone_is_named_by_the_full_check(
    store: Store, opener: StoreOpener, log: int, column: str, value: str | None, said: str
) -> None:
    tamper(store, f"UPDATE readings SET {column} = ? WHERE log = ? AND idx = 2", value, LOG)  # noqa: S608
    report = both(store, opener)
    name = f"source.{column}" if column == "received" else column
    assert report.bad_index == 2
    assert report.problem is not None
    assert report.problem.startswith(f"{name}: stored {value!r}, certified leaf says {said}")


@pytest.mark.parametrize("leaf", [b"\xff\xfe not UTF-8", b"not JSON", b'{"attrs":{}}'])
def test_a_leaf_that_is_not_the_readings_json_cannot_fail_the_page(
    store: Store, opener: StoreOpener, log: int, leaf: bytes
) -> None:
    tamper(store, "UPDATE readings SET leaf = ? WHERE log = ? AND idx = 7", leaf, LOG)
    rows = store.raw_leaf_rows(LOG, 6, 9)
    assert rows is not None and rows[1][1] == leaf
    report = both(store, opener)
    assert report.bad_index == 7
    assert report.problem in (
        "the stored leaf bytes are not JSON",
        "log: stored 'bal-main', certified leaf says None",
    )


def test_attrs_stored_in_another_order_or_escaped_need_no_full_check(
    store: Store, opener: StoreOpener, log: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """attrs are stored as the reading gave them, in its key order; a copy restored
    with JSON of its own escapes or order says the same, and is not a finding."""
    attrs = json.dumps({"phase": "A", "component": "BUS1"}, ensure_ascii=True, indent=1)
    tamper(store, "UPDATE readings SET attrs = ? WHERE log = ? AND idx = 0", attrs, LOG)
    full: list[object] = []
    passed = checked_apart.passed
    monkeypatch.setattr(checked_apart, "passed", lambda *a: full.append(a[0]) or passed(*a))
    report = audit_log(store, LOG, None, pages=Pages(3))
    assert report.ok, report.problem
    assert full == []  # every leaf was matched as bytes
    tamper(store, "UPDATE readings SET attrs = ? WHERE log = ? AND idx = 0", '{"phase":"B"}', LOG)
    report = both(store, opener)
    assert report.bad_index == 0
    assert report.problem is not None and report.problem.startswith("attrs: stored {'phase': 'B'}")


def test_the_first_of_two_changed_payloads_is_the_finding(
    store: Store, opener: StoreOpener, log: int
) -> None:
    """Five messages, in pages of 3: the second and the fourth changed, one on each page."""
    messages = store.raw_messages(0, 10)
    ids = [message_id for message_id, *_ in messages]
    for message_id in (ids[3], ids[1]):
        payload = messages[ids.index(message_id)][3]
        assert isinstance(payload, bytes)
        forged = payload.replace(b"BUS1", b"BUS9")
        tamper(store, "UPDATE messages SET payload = ? WHERE id = ?", forged, message_id)
        report = both(store, opener)
        assert report.bad_index == 3 * ids.index(message_id)
        assert report.problem is not None
        assert report.problem.startswith(f"message {message_id}: payload does not hash")


def test_a_message_cut_short_is_named(store: Store, opener: StoreOpener, log: int) -> None:
    tamper(
        store, "UPDATE messages SET payload = ? WHERE id IN (SELECT max(id) FROM messages)", b"x"
    )
    report = both(store, opener)
    assert report.bad_index == 12
    assert report.problem is not None and report.problem.endswith(
        "a message that gave readings is never cut"
    )


@pytest.mark.parametrize(
    ("level", "index", "leaves"), [(0, 4, "4-4"), (1, 2, "4-5"), (1, 4, "8-9"), (2, 1, "4-7")]
)
def test_a_node_inside_or_over_a_page_start_is_named(
    store: Store, opener: StoreOpener, log: int, level: int, index: int, leaves: str
) -> None:
    """Pages of 3 records: leaf hash 4 and node (1, 2) over leaves 4-5 lie inside the
    page [3, 6), which a worker checks; nodes (1, 4) over leaves 8-9 and (2, 1) over
    4-7 end on a later page than they begin, and this process checks them."""
    forged = bytes(range(32))
    tamper(
        store,
        "UPDATE nodes SET hash = ? WHERE log = ? AND level = ? AND idx = ?",
        forged, LOG, level, index,
    )  # fmt: skip
    report = both(store, opener)
    first = int(leaves.split("-")[0])
    assert report.bad_index == first
    if level == 0:
        assert report.problem == "leaf bytes do not hash to the stored leaf hash"
    else:
        assert report.problem is not None
        assert report.problem.startswith(
            f"stored Merkle node (level {level}, index {index}) over leaves {leaves} "
            f"is 0x{forged.hex()}; the leaves give 0x"
        )


def test_a_blob_in_a_text_column_is_named_where_sqlite_holds_one(
    store: Store, opener: StoreOpener, log: int, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["open_store"] != "sqlite":
        pytest.skip("only SQLite keeps a BLOB in a text column")
    tamper(store, "UPDATE readings SET owner = CAST(owner AS BLOB) WHERE log = ? AND idx = 10", LOG)
    assert store.raw_leaf_rows(LOG, 9, 12) is None  # the database cannot encode it
    report = both(store, opener)
    assert report.bad_index == 10
    assert report.problem is not None and report.problem.startswith("owner: stored b'0x")
