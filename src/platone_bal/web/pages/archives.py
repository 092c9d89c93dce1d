"""The admin's Data lifecycle page: the hot window, the live days, the archive files and
restores of day ranges, on the same services as /v1/archives (`ctx.lifecycle`).

A restore runs in the background (a day of a large DSO takes seconds to minutes), so the
form only starts the job and the page shows its progress when asked (`?job=ID`, and the
node's latest restores, whoever started them). The page does not refresh itself: a timed
`<meta http-equiv="refresh">` fails WCAG 2.2.1 (axe-core's meta-refresh rule) and a
script would be one more file under the CSP for one number; while a job runs, a
"check progress" link reloads the page instead.

Jobs live in the memory of the node that runs them (`RestoreJobs`): behind a load
balancer, a job's page is only found on that node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from platone_bal.api.context import ApiContext
from platone_bal.domain.readings import parse_time
from platone_bal.domain.users import Role
from platone_bal.ports import ArchiveRecord, ArchiveStatus
from platone_bal.services.restore_jobs import Lifecycle, RestoreJob
from platone_bal.web.pages.rendering import HOME, Context, Csrf, back, page
from platone_bal.web.session import check_csrf, signed_in

router = APIRouter(include_in_schema=False)
PAGE = "/admin/archives"
RECENT = 5
"""The node's latest restores the page shows besides the one asked for."""
HASH_SHOWN = 12
"""Hex digits of an archive's SHA3-256 in the table (the whole value is in its title)."""


@dataclass(frozen=True, slots=True)
class LiveDay:
    """A measurement day in the live store and why it is there."""

    day: date
    readings: int
    state: str
    """"hot" (inside the window), "restored" (brought back, kept a while) or "due"
    (older than the window: the next run archives it once its checkpoint is anchored)."""


@dataclass(frozen=True, slots=True)
class Part:
    """One archive file as the page shows it."""

    record: ArchiveRecord
    sha3: str
    """0x-prefixed hex, the whole value."""
    live_until: datetime | None
    """When a restored part is archived again (None: not restored)."""

    @property
    def short_sha3(self) -> str:
        return self.sha3[: 2 + HASH_SHOWN] + "…"

    @property
    def size(self) -> str:
        return human_bytes(self.record.bytes)


@dataclass(frozen=True, slots=True)
class Summary:
    """The hot window in numbers, for the admin's home and the top of the page."""

    log: str
    hot_days: int
    oldest_hot_day: date
    live_days: int
    live_readings: int
    archived_days: int
    """Days with a part only in its archive file (what queries cannot answer)."""
    archived_parts: int
    archived_readings: int
    restored_parts: int


def human_bytes(count: int) -> str:
    """A file's size as people compare them (the exact count is in the manifest)."""
    size, unit = float(count), "B"
    for larger in ("kB", "MB", "GB"):
        if size < 1000:
            break
        size, unit = size / 1000, larger
    return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"


def summary(ctx: ApiContext, lifecycle: Lifecycle) -> Summary:
    archiver = lifecycle.archiver
    live = ctx.store.live_days(archiver.log)
    records = ctx.store.archives(archiver.log)
    archived = [record for record in records if record.status is ArchiveStatus.ARCHIVED]
    restored = [record for record in records if record.status is ArchiveStatus.RESTORED]
    return Summary(
        log=archiver.log,
        hot_days=archiver.hot_days,
        oldest_hot_day=archiver.oldest_hot_day(),
        live_days=len(live),
        live_readings=sum(count for _, count in live),
        archived_days=len({record.day for record in archived}),
        archived_parts=len(archived),
        archived_readings=sum(record.readings for record in archived),
        restored_parts=len(restored),
    )


def live_days(ctx: ApiContext, lifecycle: Lifecycle, records: list[ArchiveRecord]) -> list[LiveDay]:
    oldest_hot = lifecycle.archiver.oldest_hot_day()
    restored = {record.day for record in records if record.status is ArchiveStatus.RESTORED}
    return [
        LiveDay(
            day,
            count,
            "hot" if day >= oldest_hot else "restored" if day in restored else "due",
        )
        for day, count in ctx.store.live_days(lifecycle.archiver.log)
    ]


def parts(lifecycle: Lifecycle, records: list[ArchiveRecord]) -> list[Part]:
    """Newest day first: the days an admin is most likely asked about."""
    keep: timedelta = lifecycle.archiver.keep_restored
    return [
        Part(
            record,
            "0x" + record.sha3.hex(),
            None if record.restored is None else parse_time(record.restored) + keep,
        )
        for record in sorted(records, key=lambda r: (r.day, r.part), reverse=True)
    ]


def shown_jobs(lifecycle: Lifecycle, asked: str | None) -> list[RestoreJob]:
    """The job asked for, then the node's latest restores, newest first (an id the node
    no longer knows, after a restart or past the jobs it keeps, is left out)."""
    first = lifecycle.jobs.job(asked) if asked is not None else None
    recent = [job for job in lifecycle.jobs.recent(RECENT) if job.id != asked]
    return ([first] if first is not None else []) + recent


@router.get(PAGE)
def archives_page(request: Request, ctx: Context, job: str | None = None) -> Response:
    user = signed_in(request, ctx)
    if user.role is not Role.ADMIN:
        return back(HOME[user.role], problem="That page is for administrators.")
    lifecycle = ctx.lifecycle
    if lifecycle is None:
        return page(request, ctx, user, "archives.html", lifecycle=None)
    records = ctx.store.archives(lifecycle.archiver.log)
    jobs = shown_jobs(lifecycle, job)
    missing = job is not None and all(found.id != job for found in jobs)
    return page(
        request,
        ctx,
        user,
        "archives.html",
        lifecycle=summary(ctx, lifecycle),
        live=live_days(ctx, lifecycle, records),
        parts=parts(lifecycle, records),
        jobs=jobs,
        running=any(found.status == "running" for found in jobs),
        missing_job=job if missing else None,
        keep_days=lifecycle.archiver.keep_restored.days,
    )


@router.post(f"{PAGE}/restore")
def restore_days(
    request: Request,
    ctx: Context,
    csrf: Csrf,
    since: Annotated[str, Form(alias="from")],
    until: Annotated[str, Form(alias="to")],
) -> Response:
    """Start restoring the archived parts of days from..to; the page then follows the
    job. Days already live are left as they are (the job finds nothing to do)."""
    user = signed_in(request, ctx)
    check_csrf(request, csrf)
    if user.role is not Role.ADMIN:
        return back(HOME[user.role], problem="Only administrators restore archives.")
    if ctx.lifecycle is None:
        return back(PAGE, problem="This node keeps no archives.")
    try:
        first, last = date.fromisoformat(since.strip()), date.fromisoformat(until.strip())
    except ValueError:
        return back(PAGE, problem="Nothing restored: write the days as YYYY-MM-DD.")
    if last < first:
        return back(PAGE, problem="Nothing restored: the last day is before the first.")
    job = ctx.lifecycle.jobs.start(first, last, user.username)
    days = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    if job.parts:
        notice = f"Restore job {job.id} started: {job.parts} archived part(s) of {days}."
    else:
        notice = f"Restore job {job.id}: no archived part in {days}, nothing to bring back."
    query = urlencode({"job": job.id, "notice": notice})
    return RedirectResponse(f"{PAGE}?{query}", status_code=303)
