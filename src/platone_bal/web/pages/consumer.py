"""The consumer's home: the producers it may ask, its grants, what it may read now,
and the form that asks a producer for access."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from platone_bal.domain.grants import GrantError, Slice
from platone_bal.services.grants import GrantNotFound
from platone_bal.web.pages.grants import GrantForm, audit_grant, comma_separated, utc_moment
from platone_bal.web.pages.rendering import Context, back, page
from platone_bal.web.session import check_csrf, signed_in

router = APIRouter(include_in_schema=False)


@router.get("/consumer")
def consumer_home(request: Request, ctx: Context) -> Response:
    user = signed_in(request, ctx)
    now = ctx.grants.clock()
    grants = ctx.grants.grants_of(user)
    producers = ctx.grants.producers_for(user)
    readable = sorted({g.producer for g in grants if g.active(now)})
    return page(
        request,
        ctx,
        user,
        "consumer.html",
        producers=producers,
        grants=grants,
        now=now,
        readable=readable,
    )


@router.post("/consumer/grants")
def request_grant(request: Request, ctx: Context, form: Annotated[GrantForm, Form()]) -> Response:
    user = signed_in(request, ctx)
    check_csrf(request, form.csrf)
    producer = form.producer or ""
    try:
        scope = Slice(producer, comma_separated(form.devices), comma_separated(form.measurands))
        grant = ctx.grants.request(user, scope, utc_moment(form.expires), form.reason or None)
    except (GrantError, GrantNotFound, ValueError) as error:
        return back("/consumer", problem=f"Not requested: {error}")
    audit_grant(ctx, user, request, grant)
    return back("/consumer", notice=f"Access to {producer}'s data requested (grant {grant.id}).")
