"""The grant forms: what they send, read into a grant's limits, and the decision form
both sides post (a producer accepts, narrowed or not, or refuses; either side revokes).
Every change of a grant is on the access log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import BaseModel

from platone_bal.api.context import ApiContext
from platone_bal.domain.grants import Grant, GrantError
from platone_bal.domain.users import User
from platone_bal.services.grants import GrantNotFound
from platone_bal.web.pages.rendering import HOME, Context, back
from platone_bal.web.session import check_csrf, signed_in

router = APIRouter(include_in_schema=False)


class GrantForm(BaseModel):
    """A grant form: the CSRF token, optional limits (comma-separated lists, a UTC
    datetime-local) and the reason, as the request, accept and refuse forms send them."""

    csrf: str
    producer: str | None = None
    devices: str | None = None
    measurands: str | None = None
    expires: str | None = None
    reason: str | None = None


def comma_separated(text: str | None) -> frozenset[str] | None:
    """A comma-separated form field as a set; empty means no limit."""
    values = frozenset(v.strip() for v in (text or "").split(",") if v.strip())
    return values or None


def utc_moment(text: str | None) -> datetime | None:
    """A datetime-local form value, read as UTC."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def audit_grant(ctx: ApiContext, user: User, request: Request, grant: Grant) -> None:
    ctx.audit.record(
        user.username, "web", f"grant.{grant.status.value}", [grant.producer], request.url.path, 0
    )


@router.post("/grants/{grant_id}/{decision}")
def decide_grant(
    grant_id: int,
    decision: str,
    request: Request,
    ctx: Context,
    form: Annotated[GrantForm, Form()],
) -> Response:
    """accept (optionally narrowed) | refuse | revoke, by whoever may."""
    user = signed_in(request, ctx)
    check_csrf(request, form.csrf)
    reason = form.reason or None
    home_page = HOME[user.role]
    try:
        if decision == "accept":
            asked = ctx.grants.get(grant_id, user).scope
            narrowed = asked.narrowed(
                comma_separated(form.devices), comma_separated(form.measurands)
            )
            grant = ctx.grants.accept(grant_id, user, narrowed, utc_moment(form.expires))
        elif decision == "refuse":
            grant = ctx.grants.refuse(grant_id, user, reason)
        elif decision == "revoke":
            grant = ctx.grants.revoke(grant_id, user, reason)
        else:
            return back(home_page, problem=f"Unknown decision {decision!r}.")
    except (GrantError, GrantNotFound, ValueError) as error:
        return back(home_page, problem=f"Grant {grant_id} not changed: {error}")
    audit_grant(ctx, user, request, grant)
    return back(home_page, notice=f"Grant {grant_id} is now {grant.status.value}.")
