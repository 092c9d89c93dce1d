"""Set points on the producer's and the admin's pages: each with its status, the Light
Node's answer and both leaves' proofs to download; the DSO (admin) issues them here as
through the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from platone_bal.api.context import ApiContext
from platone_bal.domain.setpoints import SETPOINT_LOG, InvalidSetPoint, SetPointRequest
from platone_bal.domain.users import Role, User
from platone_bal.ports import StoredSetPoint
from platone_bal.services.certification import NotYetCertified, leaf_proof
from platone_bal.web.pages.rendering import HOME, Context, Csrf, back
from platone_bal.web.session import check_csrf, signed_in

router = APIRouter(include_in_schema=False)
SHOWN = 50
"""Set points a page lists: the latest."""


def recent_setpoints(ctx: ApiContext, user: User) -> list[StoredSetPoint]:
    """The latest set points `user` may see (the DSO all, a producer its own), newest first."""
    if user.role is Role.CONSUMER:
        return []
    producer = None if user.role is Role.ADMIN else user.username
    return ctx.store.setpoints(producer, limit=SHOWN, newest_first=True)


@router.post("/setpoints")
def issue_setpoint(
    request: Request,
    ctx: Context,
    csrf: Csrf,
    producer: Annotated[str, Form()],
    device: Annotated[str, Form()],
    measurand: Annotated[str, Form()],
    value: Annotated[str, Form()],
    minutes: Annotated[int, Form(ge=1, le=60 * 24 * 31)],
    unit: Annotated[str | None, Form()] = None,
) -> Response:
    """The DSO issues a set point from now for `minutes`."""
    user = signed_in(request, ctx)
    check_csrf(request, csrf)
    if user.role is not Role.ADMIN or ctx.setpoints is None:
        return back(HOME[user.role], problem="Only the DSO (an administrator) issues set points.")
    start = ctx.setpoints.clock()
    body = {
        "producer": producer, "device": device, "measurand": measurand, "value": value,
        "unit": unit or None, "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
    }  # fmt: skip
    try:
        stored = ctx.setpoints.issue(SetPointRequest.of(body), user.username)
    except InvalidSetPoint as error:
        return back("/admin", problem=f"Set point not issued: {error}")
    ctx.audit.record(user.username, "web", "setpoint.issued", [producer], request.url.path, 1)
    notice = f"Set point {stored.id} issued (bal-setpoints index {stored.index})."
    return back("/admin", notice=notice)


@router.get("/setpoint-proofs/{setpoint_id}.json")
def download_proof(
    setpoint_id: int, request: Request, ctx: Context, answer: bool = False
) -> Response:
    """A set point's (or, with answer=true, its answer's) proof bundle as a file."""
    user = signed_in(request, ctx)
    stored = ctx.store.setpoint(setpoint_id)
    visible = stored is not None and (
        user.role is Role.ADMIN or (user.role is Role.PRODUCER and stored.producer == user.username)
    )
    index = None if stored is None else (stored.answer_index if answer else stored.index)
    if not visible or stored is None or index is None:
        return JSONResponse({"detail": f"no set point {setpoint_id} visible to you"}, 404)
    try:
        bundle = leaf_proof(ctx.store, SETPOINT_LOG, index, f"set point {setpoint_id}")
    except NotYetCertified as error:
        return JSONResponse({"detail": str(error)}, 409)
    ctx.audit.record(user.username, "web", "proof.read", [stored.producer], request.url.path, 1)
    name = f"setpoint-{setpoint_id}{'-answer' if answer else ''}.json"
    return JSONResponse(bundle, headers={"Content-Disposition": f'attachment; filename="{name}"'})
