"""The device forms, on the producer's page and the admin's: register a device (an
MQTT password is shown once, on the page the form answers with, never in a URL) and
disable one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from platone_bal.domain.devices import DeviceKind
from platone_bal.domain.users import Role
from platone_bal.ports import UserExists
from platone_bal.services.devices import InvalidDevice
from platone_bal.web.pages.admin import admin_page
from platone_bal.web.pages.producer import producer_page
from platone_bal.web.pages.rendering import HOME, Context, Csrf, back
from platone_bal.web.session import check_csrf, signed_in

router = APIRouter(include_in_schema=False)


@router.post("/devices")
def register_device(
    request: Request,
    ctx: Context,
    csrf: Csrf,
    device_id: Annotated[str, Form()],
    kind: Annotated[DeviceKind, Form()],
    public_key: Annotated[str | None, Form()] = None,
    credentials: Annotated[bool, Form()] = False,
    producer: Annotated[str | None, Form()] = None,
) -> Response:
    """A producer registers its device (an admin: any producer's). An MQTT password is
    shown once, on the page this answers with, never in a URL."""
    user = signed_in(request, ctx)
    check_csrf(request, csrf)
    owner = user
    if user.role is Role.ADMIN and producer:
        found = ctx.store.get_user(producer)
        if found is None:
            return back("/admin", problem=f"No producer {producer}.")
        owner = found
    try:
        device, secret = ctx.devices.register(
            owner, device_id, kind, public_key or None, credentials
        )
    except (InvalidDevice, UserExists) as error:
        return back(HOME[user.role], problem=f"Device not registered: {error}")
    shown = {"created_device": device, "created_secret": secret}
    if user.role is Role.ADMIN:
        return admin_page(request, ctx, user, **shown)
    return producer_page(request, ctx, user, **shown)


@router.post("/devices/{producer}/{device_id}/disable")
def disable_device(
    producer: str, device_id: str, request: Request, ctx: Context, csrf: Csrf
) -> Response:
    user = signed_in(request, ctx)
    check_csrf(request, csrf)
    if user.role is not Role.ADMIN and user.username != producer:
        return back(HOME[user.role], problem="Only the owner or an administrator may do that.")
    if ctx.devices.disable(producer, device_id) is None:
        return back(HOME[user.role], problem=f"No device {device_id} of {producer}.")
    return back(HOME[user.role], notice=f"Device {device_id} disabled.")
