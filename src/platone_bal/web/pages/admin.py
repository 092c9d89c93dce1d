"""The admin's home: users, devices, rejected payloads and the pipeline's state (log
size, latest checkpoint and anchor, the node's components), and the user forms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from platone_bal.api.context import ApiContext
from platone_bal.domain.devices import DeviceKind
from platone_bal.domain.users import Role, User
from platone_bal.ports import RejectionQuery, UserExists
from platone_bal.services.users import InvalidUser
from platone_bal.web.pages.archives import summary as lifecycle_summary
from platone_bal.web.pages.device_keys import key_views
from platone_bal.web.pages.rendering import HOME, Context, Csrf, back, page
from platone_bal.web.pages.setpoints import recent_setpoints
from platone_bal.web.session import check_csrf, signed_in

router = APIRouter(include_in_schema=False)


@router.get("/admin")
def admin_home(request: Request, ctx: Context) -> Response:
    user = signed_in(request, ctx)
    if user.role is not Role.ADMIN:
        return back(HOME[user.role], problem="That page is for administrators.")
    return admin_page(request, ctx, user)


def admin_page(request: Request, ctx: ApiContext, user: User, **extra: Any) -> Response:
    """The page, with `extra` for the template (a device just registered, its secret)."""
    log = ctx.ingest.log_id
    size = ctx.store.log_size(log)
    anchor = ctx.store.latest_anchor(log)
    checkpoint = ctx.store.latest_checkpoint(log)
    lookup = ctx.anchor_lookup()
    devices = ctx.store.list_devices(None)
    return page(
        request,
        ctx,
        user,
        "admin.html",
        users=ctx.store.list_users(),
        devices=devices,
        keys=key_views(ctx, devices),
        setpoints=recent_setpoints(ctx, user),
        lifecycle=None if ctx.lifecycle is None else lifecycle_summary(ctx, ctx.lifecycle),
        rejections=ctx.store.rejections(RejectionQuery(limit=20, newest_first=True)),
        log=log,
        size=size,
        checkpoint=checkpoint,
        anchor=anchor,
        anchor_lag=size - (anchor.size if anchor else 0),
        status={"Chain": "open" if lookup is not None else "not open yet", **ctx.node_status()},
        roles=[r.value for r in Role],
        kinds=[k.value for k in DeviceKind],
        producers=[u.username for u in ctx.store.list_users() if u.role is Role.PRODUCER],
        **extra,
    )


@router.post("/admin/users")
def create_user(
    request: Request,
    ctx: Context,
    csrf: Csrf,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[Role, Form()],
) -> Response:
    admin = signed_in(request, ctx)
    check_csrf(request, csrf)
    if admin.role is not Role.ADMIN:
        return back(HOME[admin.role], problem="Only administrators create users.")
    try:
        ctx.users.create(username, password, role)
    except (InvalidUser, UserExists) as error:
        return back("/admin", problem=f"User not created: {error}")
    return back("/admin", notice=f"User {username} ({role.value}) created.")


@router.post("/admin/users/{username}/{action}")
def enable_user(username: str, action: str, request: Request, ctx: Context, csrf: Csrf) -> Response:
    admin = signed_in(request, ctx)
    check_csrf(request, csrf)
    if admin.role is not Role.ADMIN or action not in ("disable", "enable"):
        return back(HOME[admin.role], problem="Only administrators disable or enable users.")
    try:
        ctx.users.set_disabled(username, action == "disable", admin)
    except (InvalidUser, LookupError) as error:
        return back("/admin", problem=f"User {username} not changed: {error}")
    return back("/admin", notice=f"User {username} {action}d.")
