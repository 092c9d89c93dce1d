"""/v1/archives: the hot window for the DSO's administrators: which days are live,
which are archived (files, SHA3-256, index ranges), and restores on demand."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from platone_bal.api.audit import audit
from platone_bal.api.deps import Admin, Context
from platone_bal.services.restore_jobs import Lifecycle, RestoreJob

router = APIRouter(prefix="/v1/archives", tags=["archives"])


DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class RestoreRequest(BaseModel):
    """Days as JSON strings, strictly (a number is not a day, even one pydantic could
    read as a date)."""

    model_config = ConfigDict(populate_by_name=True, strict=True)

    since: str = Field(alias="from", pattern=DAY, description="First UTC day to restore",
                       examples=["2026-01-01"])  # fmt: skip
    until: str = Field(alias="to", pattern=DAY, description="Last UTC day to restore",
                       examples=["2026-01-31"])  # fmt: skip

    def days(self) -> tuple[date, date]:
        """(first, last); 400 when either is no calendar day or last is before first."""
        try:
            first, last = date.fromisoformat(self.since), date.fromisoformat(self.until)
        except ValueError as error:
            raise HTTPException(400, f"not a day: {error}") from None
        if last < first:
            raise HTTPException(400, "to is before from")
        return first, last


def _lifecycle(ctx: Context) -> Lifecycle:
    if ctx.lifecycle is None:
        raise HTTPException(503, "this node keeps no archives")
    return ctx.lifecycle


@router.get("")
def list_archives(ctx: Context, who: Admin) -> dict[str, Any]:
    """Live days (readings per measurement day) and archive files of the readings' log."""
    lifecycle = _lifecycle(ctx)
    archiver = lifecycle.archiver
    return {
        "log": archiver.log,
        "hot_days": archiver.hot_days,
        "oldest_hot_day": archiver.oldest_hot_day().isoformat(),
        "live": [
            {"day": day.isoformat(), "readings": count}
            for day, count in ctx.store.live_days(archiver.log)
        ],
        "archives": [
            {
                "day": record.day.isoformat(),
                "part": record.part,
                "status": record.status.value,
                "readings": record.readings,
                "messages": record.messages,
                "file": record.file,
                "bytes": record.bytes,
                "sha3": "0x" + record.sha3.hex(),
                "first_index": record.first_index,
                "last_index": record.last_index,
                "checkpoint_size": record.checkpoint_size,
                "created": record.created,
                "restored": record.restored,
            }
            for record in ctx.store.archives(archiver.log)
        ],
    }


@router.post("/restore", status_code=202)
def restore(
    ctx: Context, request: Request, who: Admin, wanted: RestoreRequest, response: Response
) -> dict[str, Any]:
    """Bring the archived days from..to back into the live store, in the background;
    follow the job at its Location. Asking again for days already live does nothing."""
    first, last = wanted.days()
    job = _lifecycle(ctx).jobs.start(first, last, who.user.username)
    audit(ctx, request, who, "archives.restore", (), job.parts)
    response.headers["Location"] = f"/v1/archives/restore/{job.id}"
    return job_json(job)


@router.get("/restore/{job_id}")
def restore_job(ctx: Context, who: Admin, job_id: str) -> dict[str, Any]:
    """A restore's progress: parts done of those asked, readings back, its end."""
    job = _lifecycle(ctx).jobs.job(job_id)
    if job is None:
        raise HTTPException(404, f"no restore job {job_id} on this node")
    return job_json(job)


def job_json(job: RestoreJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "from": job.first.isoformat(),
        "to": job.last.isoformat(),
        "by": job.by,
        "status": job.status,
        "parts": job.parts,
        "parts_done": job.parts_done,
        "readings": job.readings,
        "days": job.days,
        "started": job.started,
        "finished": job.finished,
        "error": job.error,
    }
