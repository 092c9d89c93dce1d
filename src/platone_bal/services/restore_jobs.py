"""Restores asked through the API: each runs in a thread of its own and is followed by
its id (POST /v1/archives/restore answers 202 at once; a day of a large DSO takes
seconds to minutes). Jobs are kept in memory by the node that runs them, under an id no
other node gives (behind a balancer, a poll that reaches another node gets 404, never
someone else's job; GET /v1/archives shows each day's state from any node). A node that
stops loses the job, never data: a restore is one transaction per part, and asking
again finishes it."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from platone_bal.domain.readings import format_time
from platone_bal.services.archiver import Archiver, PartDone

KEPT = 100
"""Finished jobs remembered (the oldest are forgotten)."""
WAIT = 900.0
"""Seconds a job waits for this node's archiver (its hourly look, another restore)."""


@dataclass
class RestoreJob:
    id: str
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
        self._jobs: dict[str, RestoreJob] = {}
        self._lock = threading.Lock()

    def start(self, first: date, last: date, by: str) -> RestoreJob:
        parts = len(self._archiver.archived_parts(first, last))
        job = RestoreJob(
            secrets.token_hex(6), first, last, by, parts, format_time(datetime.now(UTC))
        )
        with self._lock:
            finished = [old for old in self._jobs.values() if old.finished is not None]
            for old in sorted(finished, key=lambda j: j.started)[: max(0, len(finished) - KEPT)]:
                del self._jobs[old.id]
            self._jobs[job.id] = job
        threading.Thread(
            target=self._run, args=(job,), name=f"bal-restore-{job.id}", daemon=True
        ).start()
        return job

    def job(self, job_id: str) -> RestoreJob | None:
        """A copy of the job as it is now (its thread goes on changing the original)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else replace(job, days=list(job.days))

    def recent(self, limit: int = 10) -> list[RestoreJob]:
        """The latest jobs of this node, newest first (copies)."""
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.started, reverse=True)[:limit]
            return [replace(job, days=list(job.days)) for job in jobs]

    def _run(self, job: RestoreJob) -> None:
        def progress(part: PartDone) -> None:
            with self._lock:
                job.progress(part)

        status, error = "done", None
        try:
            self._archiver.restore(job.first, job.last, progress, wait=WAIT)
        except Exception as failure:  # reported to whoever follows the job
            status, error = "failed", str(failure)
        with self._lock:
            job.finished = format_time(datetime.now(UTC))
            job.status, job.error = status, error


@dataclass(frozen=True)
class Lifecycle:
    """The hot window as the API serves it: the archiver and the restores under way."""

    archiver: Archiver
    jobs: RestoreJobs
