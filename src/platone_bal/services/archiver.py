"""The hot window: days of readings older than BAL_HOT_DAYS move to archive files, and
come back on demand.

Archiving a day (a *part* of it: readings of that day that arrive later make another):
1. read the log's size, then the day's live readings below it (all committed: indices
   are handed out in the transaction that commits them);
2. find the smallest anchored checkpoint covering them (none yet: the day waits);
3. write the data file (readings, their messages), then its manifest (the checkpoint,
   its anchor, the cover of the other leaves), each atomically and fsynced;
4. one transaction, fenced by the archiver's lease: the readings leave the live store,
   their messages too unless still needed, and the part is listed with its SHA3-256.
A kill between 3 and 4 leaves an unlisted file, written over by the next run; a kill
inside 4 leaves everything live. The Merkle nodes stay: live proofs, `bal audit` and a
restore check the archived leaves against them.

Restoring a part: its file must still have the listed SHA3-256 and every leaf must hash
to the stored leaf hash at its index; then one transaction puts back what is not live
and marks the part restored. A restored part stays live for BAL_RESTORE_KEEP_DAYS,
then is archived again without a new file (its rows are the file's).

One archiver runs at a time across the nodes (the `archiver` lease, held under the
node's name), whether started by the daily job of the leader or by `bal archive` /
`bal restore` / the admin API; within a node, a lock keeps its own runs apart (a lease
its holder asks for again is only renewed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from platone_bal.domain.archive import (
    ArchivedReading,
    ArchiveError,
    Manifest,
    cover_keys,
)
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.readings import format_time
from platone_bal.ports import (
    ArchiveConflict,
    ArchiveFiles,
    ArchiveRecord,
    ArchiveStatus,
    Fence,
    Store,
)
from platone_bal.services.periodic import PeriodicWorker

log = logging.getLogger(__name__)

ARCHIVER_LEASE = "archiver"
DAYS_AHEAD = 2
"""Days after today whose partitions the job makes before their readings come."""
LEASE_SECONDS = 120.0
"""How long the archiver's lease lasts unless renewed (it is, before each part)."""


class ArchiverBusy(RuntimeError):
    """Another archive or restore holds the archiver's lease."""


class ArchiveTampered(RuntimeError):
    """An archive file is not what was listed (changed, cut, or gone): never restored."""


@dataclass(frozen=True, slots=True)
class PartDone:
    """What one step did to one part of a day."""

    day: date
    part: int
    readings: int
    action: str
    """"archived", "archived again" (a restored part), "restored", or why it waits."""


Progress = Callable[[PartDone], None]


class Archiver:
    def __init__(
        self,
        store: Store,
        files: ArchiveFiles,
        log_name: str,
        holder: str,
        hot_days: int,
        keep_restored_days: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.files = files
        self.log = log_name
        self.holder = holder
        self.hot_days = hot_days
        self.keep_restored = timedelta(days=keep_restored_days)
        self.clock = clock
        self._running = threading.Lock()

    def oldest_hot_day(self) -> date:
        """The first measurement day kept live: today (UTC) and the HOT_DAYS - 1 before."""
        return self.clock().astimezone(UTC).date() - timedelta(days=self.hot_days - 1)

    def archive_due(self, progress: Progress = lambda _: None, wait: float = 0.0) -> list[PartDone]:
        """Archive every live day older than the hot window (what can be: a day not yet
        covered by an anchored checkpoint waits for the next run). `wait`: seconds to
        wait for another run of this node to end (ArchiverBusy after)."""
        done: list[PartDone] = []
        with self._lease(wait) as renew:
            parts: dict[date, list[ArchiveRecord]] = {}
            for record in self.store.archives(self.log):
                parts.setdefault(record.day, []).append(record)
            for day, _ in self.store.live_days(self.log):
                if day >= self.oldest_hot_day():
                    break
                for step in self._archive_day(day, parts.get(day, []), renew()):
                    done.append(step)
                    progress(step)
        return done

    def restore(
        self, first: date, last: date, progress: Progress = lambda _: None, wait: float = 0.0
    ) -> list[PartDone]:
        """Bring the archived parts of days first..last back into the live store."""
        done: list[PartDone] = []
        with self._lease(wait) as renew:
            for record in self.archived_parts(first, last):
                step = self._restore_part(record, renew())
                done.append(step)
                progress(step)
        return done

    def archived_parts(self, first: date, last: date) -> list[ArchiveRecord]:
        """The parts of days first..last only in their archive files: what a restore
        of those days brings back."""
        return [
            record
            for record in self.store.archives(self.log)
            if first <= record.day <= last and record.status is ArchiveStatus.ARCHIVED
        ]

    @contextmanager
    def _lease(self, wait: float) -> Iterator[Callable[[], Fence]]:
        """Hold this node's lock and the archiver's lease; yields a function that
        renews the lease (the fence)."""

        def renew() -> Fence:
            token = self.store.take_lease(ARCHIVER_LEASE, self.holder, LEASE_SECONDS)
            if token is None:
                raise ArchiverBusy("another node's archive or restore is running; try later")
            return Fence(ARCHIVER_LEASE, self.holder, token)

        if not self._running.acquire(timeout=wait if wait > 0 else -1, blocking=wait > 0):
            raise ArchiverBusy("an archive or restore of this node is running; try later")
        try:
            renew()
            try:
                yield renew
            finally:
                self.store.release_lease(ARCHIVER_LEASE, self.holder)
        finally:
            self._running.release()

    def _archive_day(
        self, day: date, parts: list[ArchiveRecord], fence: Fence
    ) -> Iterator[PartDone]:
        below = self.store.log_size(self.log)
        readings = self.store.day_readings(self.log, day, below)
        for record in parts:
            if record.status is not ArchiveStatus.RESTORED:
                continue
            inside = [r for r in readings if record.first_index <= r.index <= record.last_index]
            readings = [
                r for r in readings if not record.first_index <= r.index <= record.last_index
            ]
            if self._kept_live(record):
                continue
            if len(inside) != record.readings:
                log.warning("archive %s: %d of its readings live, not %d", record.file,
                            len(inside), record.readings)  # fmt: skip
                continue
            again = replace(record, status=ArchiveStatus.ARCHIVED, restored=None)
            try:
                self.store.archive_day(again, [r.index for r in inside], fence)
            except ArchiveConflict as conflict:
                yield PartDone(day, record.part, len(inside), f"left live ({conflict})")
                continue
            yield PartDone(day, record.part, len(inside), "archived again")
        if readings:
            part = max((record.part for record in parts), default=0) + 1
            yield self._archive_part(day, part, readings, fence)

    def _kept_live(self, record: ArchiveRecord) -> bool:
        if record.restored is None:
            return False
        restored = datetime.fromisoformat(record.restored.replace("Z", "+00:00"))
        return self.clock() < restored + self.keep_restored

    def _archive_part(
        self, day: date, part: int, readings: Sequence[ArchivedReading], fence: Fence
    ) -> PartDone:
        last_index = readings[-1].index
        checkpoint = self.store.checkpoint_covering(self.log, last_index)
        anchor = (
            None if checkpoint is None else self.store.anchor(self.log, checkpoint.checkpoint.size)
        )
        if checkpoint is None or anchor is None:
            return PartDone(day, part, len(readings), "waiting for an anchor")
        size = checkpoint.checkpoint.size
        indices = [reading.index for reading in readings]
        keys = cover_keys(indices, size)
        stored = self.store.nodes(self.log).nodes_at(keys)
        cover = tuple((level, index, stored[level, index]) for level, index in keys)
        messages = self.store.day_messages(self.log, day, readings[-1].index + 1)
        name = self.files.data_name(self.log, day, part)
        sha3, size_bytes = self.files.write_data(name, readings, messages)
        created = format_time(self.clock())
        manifest = Manifest(
            log=self.log, day=day, part=part, file=name, file_sha3=sha3,
            file_bytes=size_bytes, readings=len(readings), messages=len(messages),
            first_index=indices[0], last_index=last_index, checkpoint=checkpoint,
            anchor=anchor, cover=cover, created=created,
        )  # fmt: skip
        self.files.write_manifest(manifest)
        ids = [reading.id for reading in readings]
        record = ArchiveRecord(
            log=self.log, day=day, part=part, file=name, sha3=sha3, bytes=size_bytes,
            readings=len(readings), messages=len(messages), first_index=indices[0],
            last_index=last_index, first_id=min(ids), last_id=max(ids),
            checkpoint_size=size, status=ArchiveStatus.ARCHIVED, created=created,
        )  # fmt: skip
        try:
            self.store.archive_day(record, indices, fence)
        except ArchiveConflict as conflict:  # the file stays unlisted: written again next run
            return PartDone(day, part, len(readings), f"left live ({conflict})")
        return PartDone(day, part, len(readings), "archived")

    def _restore_part(self, record: ArchiveRecord, fence: Fence) -> PartDone:
        if self.files.digest(record.file) != record.sha3:
            raise ArchiveTampered(
                f"{record.file} is missing or changed since it was archived (SHA3-256 "
                f"listed 0x{record.sha3.hex()}); restore it from a copy, then retry"
            )
        try:
            readings, messages = self.files.read_data(record.file)
        except ArchiveError as error:
            raise ArchiveTampered(f"{record.file}: {error}") from None
        hashes = self.store.nodes(self.log).nodes_at([(0, r.index) for r in readings])
        for reading in readings:
            if hashes.get((0, reading.index)) != SHA3_256.hash_leaf(reading.leaf):
                raise ArchiveTampered(
                    f"{record.file}: the leaf at index {reading.index} is not the one the log holds"
                )
        when = format_time(self.clock())
        count = self.store.restore_archive(record, readings, messages, when, fence)
        return PartDone(record.day, record.part, count, "restored")


def archived_days(
    store: Store, log_name: str, since: date | None, until: date | None
) -> list[date]:
    """The days of `log_name` in [since, until] (None: open) with a part only in its
    archive file: what a query over those days cannot answer from the live store."""
    return sorted(
        {
            record.day
            for record in store.archives(log_name)
            if record.status is ArchiveStatus.ARCHIVED
            and (since is None or record.day >= since)
            and (until is None or record.day <= until)
        }
    )


class ArchiveJob(PeriodicWorker):
    """The leader's look, every `interval` seconds, for days that left the hot window
    (a day leaves it at midnight UTC: an hourly look archives it within the hour).
    Its own lease, not the leader's fence, keeps it apart from a `bal archive` run."""

    name = "bal-archiver"

    def __init__(self, archiver: Archiver, interval: float) -> None:
        super().__init__(interval, max_backoff=max(interval, 3600.0))
        self.archiver = archiver

    def start(self) -> None:
        super().start()
        self.wake()  # look once at the start of each term

    def step(self) -> object:
        self.archiver.store.prepare_days(DAYS_AHEAD)
        try:
            done = self.archiver.archive_due()
        except ArchiverBusy:
            return None  # someone archives by hand: the next look takes what is left
        for part in done:
            log.info("%s %s part %d: %d readings %s", self.archiver.log, part.day, part.part,
                     part.readings, part.action)  # fmt: skip
        return done
