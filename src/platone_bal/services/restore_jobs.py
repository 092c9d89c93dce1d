"""Restores asked through the API: each runs in a thread of its own and is followed by
its id (POST /v1/archives/restore answers 202 at once; a day of a large DSO takes
seconds to minutes). Jobs are kept in memory: a node that stops loses the job, never
data (a restore is one transaction per part; asking again finishes it)."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from platone_bal.domain.readings import format_time
from platone_bal.ports import ArchiveStatus
from platone_bal.services.archiver import Archiver, PartDone

KEPT = 100
"""Finished jobs remembered (the oldest are forgotten)."""


@dataclass
class RestoreJob:
    id: int
    first: date
    last: date
    by: str
    parts: int
    """Archived parts of those days when the job began."""
    started: str
    status: str = "running"
    """running, done or failed."""
    parts_done: int = 0
    readings: int = 0
    finished: str | None = None
    error: str | None = None
    days: list[str] = field(default_factory=list)
    """The days restored so far."""

    def progress(self, part: PartDone) -> None:
        self.parts_done += 1
        self.readings += part.readings
        if part.day.isoformat() not in self.days:
            self.days.append(part.day.isoformat())


class RestoreJobs:
    def __init__(self, archiver: Archiver) -> None:
        self._archiver = archiver
        self._jobs: dict[int, RestoreJob] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, first: date, last: date, by: str) -> RestoreJob:
        parts = sum(
            1
            for record in self._archiver.store.archives(self._archiver.log)
            if first <= record.day <= last and record.status is ArchiveStatus.ARCHIVED
        )
        job = RestoreJob(next(self._ids), first, last, by, parts, format_time(datetime.now(UTC)))
        with self._lock:
            self._jobs[job.id] = job
            for old in sorted(self._jobs)[:-KEPT]:
                del self._jobs[old]
        threading.Thread(
            target=self._run, args=(job,), name=f"bal-restore-{job.id}", daemon=True
        ).start()
        return job

    def job(self, job_id: int) -> RestoreJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job: RestoreJob) -> None:
        try:
            self._archiver.restore(job.first, job.last, job.progress)
            job.status = "done"
        except Exception as error:  # reported to whoever follows the job
            job.status, job.error = "failed", str(error)
        job.finished = format_time(datetime.now(UTC))


@dataclass(frozen=True)
class Lifecycle:
    """The hot window as the API serves it: the archiver and the restores under way."""

    archiver: Archiver
    jobs: RestoreJobs
