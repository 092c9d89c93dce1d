"""The producer's home: requests to decide, active grants, its devices with their
recent activity, and its latest rejected payloads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from platone_bal.api.context import ApiContext
from platone_bal.domain.devices import DeviceKind
from platone_bal.domain.grants import GrantStatus
from platone_bal.domain.users import User
from platone_bal.ports import RejectionQuery
from platone_bal.web.pages.device_keys import key_views
from platone_bal.web.pages.rendering import Context, page
from platone_bal.web.pages.setpoints import recent_setpoints
from platone_bal.web.session import signed_in

router = APIRouter(include_in_schema=False)


@router.get("/producer")
def producer_home(request: Request, ctx: Context) -> Response:
    return producer_page(request, ctx, signed_in(request, ctx))


def producer_page(request: Request, ctx: ApiContext, user: User, **extra: Any) -> Response:
    """The page, with `extra` for the template (a device just registered, its secret)."""
    now = ctx.grants.clock()
    grants = ctx.grants.grants_of(user)
    requests = [g for g in grants if g.status_at(now) is GrantStatus.REQUESTED]
    active = [g for g in grants if g.status_at(now) is GrantStatus.ACCEPTED]
    # counts are kept per clock hour: the window runs from the start of the last hour
    since = (now - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    minutes = max((now - since).total_seconds() / 60, 1.0)
    activity = ctx.store.device_activity(user.username, since.strftime("%Y-%m-%dT%H:%M:%S"))
    registered = {d.device_id: d for d in ctx.store.list_devices(user.username)}
    keys = key_views(ctx, list(registered.values()))
    devices = [
        {
            "id": name,
            "kind": registered[name].kind.value if name in registered else "not registered",
            "login": registered[name].login if name in registered else None,
            "disabled": registered[name].disabled if name in registered else False,
            "last_seen": activity.get(name, (None, 0))[0],
            "per_minute": round(activity.get(name, (None, 0))[1] / minutes, 2),
            "key": keys.get((user.username, name)),
        }
        for name in sorted(set(registered) | set(activity))
    ]
    rejections = ctx.store.rejections(
        RejectionQuery(producer=user.username, limit=10, newest_first=True)
    )
    return page(
        request,
        ctx,
        user,
        "producer.html",
        requests=requests,
        active=active,
        now=now,
        devices=devices,
        rejections=rejections,
        setpoints=recent_setpoints(ctx, user),
        kinds=[k.value for k in DeviceKind],
        **extra,
    )
