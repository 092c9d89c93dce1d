"""The hot window on every store: days older than it move to archive files that prove
themselves, come back on demand, and `bal audit` passes before, between and after."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from platone_bal.adapters.archive_files import LocalArchiveFiles, manifest_name
from platone_bal.domain.archive import ArchivedReading, ArchiveTree, archive_bundle
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.proof import verify_bundle
from platone_bal.ports import ArchiveStatus, Store
from platone_bal.services.archive_check import verify_archive
from platone_bal.services.archiver import Archiver, ArchiveTampered, archived_days
from platone_bal.services.audit import audit_log
from platone_bal.services.audit.archived import WithArchives
from tests.contract.builders import (
    DAY1,
    LOG,
    anchor_all,
    fill_days,
    pmu_message,
    save,
)

TODAY = datetime(2026, 3, 10, 12, tzinfo=UTC)
"""The clock of these tests: with 8 hot days, March 1 and 2 are due, March 3 is hot."""


def archiver(store: Store, tmp_path: Path, *, keep: int = 7, now: datetime = TODAY) -> Archiver:
    files = LocalArchiveFiles(tmp_path / "archives")
    return Archiver(store, files, LOG, "node-a", hot_days=8, keep_restored_days=keep,
                    clock=lambda: now)  # fmt: skip


def audited(store: Store, tmp_path: Path) -> None:
    overlay = WithArchives(store, LocalArchiveFiles(tmp_path / "archives"), LOG)
    report = audit_log(overlay.as_store(), LOG, None)
    assert report.ok, report.problem
    assert report.readings == store.log_size(LOG)


def live_times(store: Store) -> list[str]:
    from platone_bal.ports import ReadingQuery

    return sorted(reading.time[:10] for reading in store.readings(ReadingQuery(limit=1000)))


def test_days_past_the_window_leave_and_come_back(
    open_store: Callable[[], Store], tmp_path: Path
) -> None:
    store = open_store()
    fill_days(store)
    before = {r.index: r for r in _all_readings(store)}
    audited(store, tmp_path)
    assert [count for _, count in store.live_days(LOG)] == [12, 13, 13]

    done = archiver(store, tmp_path).archive_due()

    assert [(part.day.day, part.part, part.readings, part.action) for part in done] == [
        (1, 1, 12, "archived"),
        (2, 1, 13, "archived"),
    ]
    assert set(live_times(store)) == {"2026-03-03"}
    assert [day.day for day, _ in store.live_days(LOG)] == [3]
    records = store.archives(LOG)
    assert [(r.day.day, r.part, r.readings, r.status) for r in records] == [
        (1, 1, 12, ArchiveStatus.ARCHIVED),
        (2, 1, 13, ArchiveStatus.ARCHIVED),
    ]
    assert archived_days(store, LOG, None, None) == [r.day for r in records]
    audited(store, tmp_path)

    # each file proves itself, and each reading in it gives a proof bundle
    files = LocalArchiveFiles(tmp_path / "archives")
    for record in records:
        manifest = files.read_manifest(record.file)
        readings, messages = files.read_data(record.file)
        checks = verify_archive(manifest, files.digest(record.file), readings, messages)
        assert [(c.name, c.ok) for c in checks] == [
            ("file", True), ("records", True), ("tree", True), ("signature", True),
            ("anchor", None),
        ], checks  # fmt: skip
        tree = ArchiveTree({r.index: SHA3_256.hash_leaf(r.leaf) for r in readings}, manifest.cover)
        for reading in readings:
            assert reading.leaf == before[reading.index].leaf
            bundle = archive_bundle(manifest, tree, reading)
            assert all(check.ok is not False for check in verify_bundle(bundle))

    # a payload delivered again after its message was archived is not stored twice
    alice = store.get_user("alice")
    assert alice is not None
    again = pmu_message(alice, "pmu-1", DAY1 + timedelta(hours=10),
                        [("voltage", "230.0"), ("frequency", "50.01")], received=DAY1)  # fmt: skip
    assert save(store, [again]).duplicates == 1

    restored = archiver(store, tmp_path).restore(DAY1.date(), DAY1.date() + timedelta(days=1))
    assert [(p.day.day, p.readings, p.action) for p in restored] == [
        (1, 12, "restored"),
        (2, 13, "restored"),
    ]
    after = {r.index: r for r in _all_readings(store)}
    assert {i: (r.id, r.leaf) for i, r in after.items()} == {
        i: (r.id, r.leaf) for i, r in before.items()
    }
    assert [count for _, count in store.live_days(LOG)] == [12, 13, 13]
    assert all(r.status is ArchiveStatus.RESTORED for r in store.archives(LOG))
    assert archived_days(store, LOG, None, None) == []
    audited(store, tmp_path)
    # restoring again changes nothing
    assert archiver(store, tmp_path).restore(DAY1.date(), DAY1.date()) == []

    # kept live for restore_keep_days, then archived again without a new file
    assert archiver(store, tmp_path).archive_due() == []
    later = archiver(store, tmp_path, keep=0, now=TODAY + timedelta(seconds=1))
    digests = {r.file: files.digest(r.file) for r in store.archives(LOG)}
    again_done = later.archive_due()
    assert [(p.day.day, p.part, p.action) for p in again_done] == [
        (1, 1, "archived again"),
        (2, 1, "archived again"),
    ]
    assert {r.file: files.digest(r.file) for r in store.archives(LOG)} == digests
    assert set(live_times(store)) == {"2026-03-03"}
    audited(store, tmp_path)


def test_a_late_reading_of_an_archived_day_makes_a_second_part(
    open_store: Callable[[], Store], tmp_path: Path
) -> None:
    store = open_store()
    fill_days(store)
    archiver(store, tmp_path).archive_due()
    alice = store.get_user("alice")
    assert alice is not None
    late = pmu_message(alice, "pmu-2", DAY1 + timedelta(hours=23), [("voltage", "229.9")],
                       received=TODAY)  # fmt: skip
    save(store, [late])
    # not anchored yet: the late reading waits, live
    waiting = archiver(store, tmp_path).archive_due()
    assert [(p.day.day, p.part, p.action) for p in waiting] == [(1, 2, "waiting for an anchor")]
    assert "2026-03-01" in live_times(store)
    anchor_all(store)
    done = archiver(store, tmp_path).archive_due()
    assert [(p.day.day, p.part, p.readings, p.action) for p in done] == [(1, 2, 1, "archived")]
    assert [(r.day.day, r.part) for r in store.archives(LOG)] == [(1, 1), (1, 2), (2, 1)]
    audited(store, tmp_path)
    restored = archiver(store, tmp_path).restore(DAY1.date(), DAY1.date())
    assert [(p.part, p.readings) for p in restored] == [(1, 12), (2, 1)]
    audited(store, tmp_path)


def test_a_changed_archive_is_found_and_never_restored(
    open_store: Callable[[], Store], tmp_path: Path
) -> None:
    store = open_store()
    fill_days(store)
    archiver(store, tmp_path).archive_due()
    files = LocalArchiveFiles(tmp_path / "archives")
    record = store.archives(LOG)[0]
    path = files.path(record.file)
    table = pq.read_table(path)
    values = table.column("value").to_pylist()
    values[0] = "999.9"
    table = table.set_column(table.schema.get_field_index("value"), "value", [values])
    pq.write_table(table, path)

    manifest = files.read_manifest(record.file)
    readings, messages = files.read_data(record.file)
    checks = verify_archive(manifest, files.digest(record.file), readings, messages)
    assert (checks[-1].name, checks[-1].ok) == ("file", False)
    # the manifest made to agree with the file: the reading no longer matches its leaf
    forged = replace(manifest, file_sha3=files.digest(record.file) or b"")
    checks = verify_archive(forged, files.digest(record.file), readings, messages)
    assert (checks[-1].name, checks[-1].ok) == ("records", False)
    assert "value" in checks[-1].detail

    overlay = WithArchives(store, files, LOG)
    report = audit_log(overlay.as_store(), LOG, None)
    assert not report.ok
    assert "changed" in (report.problem or "")
    with pytest.raises(ArchiveTampered):
        archiver(store, tmp_path).restore(DAY1.date(), DAY1.date())
    assert "2026-03-01" not in live_times(store)
    path.unlink()
    assert files.digest(record.file) is None
    assert not audit_log(WithArchives(store, files, LOG).as_store(), LOG, None).ok
    assert files.path(manifest_name(record.file)).exists()


def _all_readings(store: Store) -> list[ArchivedReading]:
    return [
        reading
        for day in range(3)
        for reading in store.day_readings(LOG, DAY1.date() + timedelta(days=day), 10**9)
    ]


def test_readings_written_after_the_newest_day_left_do_not_stop_its_restore(
    open_store: Callable[[], Store], tmp_path: Path
) -> None:
    """Every day archived, then new readings: SQLite gives them the ids the archived
    rows had (a deleted newest row's id is used again); the restore then gives the
    archived rows new ids, and nothing is lost or doubled."""
    store = open_store()
    fill_days(store)
    everything = archiver(store, tmp_path, now=TODAY + timedelta(days=30))
    assert len(everything.archive_due()) == 3
    assert store.live_days(LOG) == []
    alice = store.get_user("alice")
    assert alice is not None
    fresh = [
        pmu_message(
            alice,
            "pmu-7",
            TODAY + timedelta(minutes=n),
            [("voltage", f"{n}.5")],
            received=TODAY + timedelta(minutes=n),
        )
        for n in range(5)
    ]
    save(store, fresh)
    restored = everything.restore(DAY1.date(), DAY1.date() + timedelta(days=2))
    assert sum(part.readings for part in restored) == 38
    readings = [r for day, _ in store.live_days(LOG) for r in store.day_readings(LOG, day, 10**9)]
    assert len(readings) == 43
    assert len({r.id for r in readings}) == 43
    assert sorted(r.index for r in readings) == list(range(43))
    anchor_all(store)
    audited(store, tmp_path)
