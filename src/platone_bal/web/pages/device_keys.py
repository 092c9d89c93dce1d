"""Each device's key as DeviceRegistry holds it, for the producer's and the admin's
pages: the key, its state and latest transaction, and the device's last signed reading.
The admin registers, rotates and revokes keys here as through the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from platone_bal.api.context import ApiContext
from platone_bal.codecs.envelope import FORMAT as SIGNED
from platone_bal.domain.devices import Device
from platone_bal.domain.users import Role
from platone_bal.ports import ChainError, ReadingQuery, StoredReading
from platone_bal.services.devices import InvalidDevice
from platone_bal.services.key_admin import KeyAdmin, UnknownDevice
from platone_bal.web.pages.rendering import HOME, Context, Csrf, back
from platone_bal.web.session import check_csrf, signed_in

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class KeyView:
    key: str | None
    state: str
    """registered, revoked, no key, or why it is not known."""
    tx: str | None
    last_signed: StoredReading | None


def key_views(ctx: ApiContext, devices: list[Device]) -> dict[tuple[str, str], KeyView]:
    """(producer, device) -> its registry entry and last signed reading."""
    admin = ctx.key_admin()
    views = {}
    for device in devices:
        if admin is None or not admin.keys.loaded:
            views[device.producer, device.device_id] = KeyView(
                None, "registry not read yet", device.chain_tx, None
            )
            continue
        state = admin.state(device)
        if state is None:
            views[device.producer, device.device_id] = KeyView(None, "no key", None, None)
            continue
        views[device.producer, device.device_id] = KeyView(
            state.key,
            "revoked" if state.revoked else "registered",
            state.tx,
            _last_signed(ctx, device),
        )
    return views


def _last_signed(ctx: ApiContext, device: Device) -> StoredReading | None:
    """The device's newest reading, if it came signed (a device with a key sends no other)."""
    query = ReadingQuery(
        producer=device.producer, device=device.device_id, newest_first=True, limit=1
    )
    newest = ctx.store.readings(query)
    return newest[0] if newest and newest[0].format == SIGNED else None


def _admin_change(request: Request, ctx: ApiContext, csrf: str) -> KeyAdmin | Response:
    user = signed_in(request, ctx)
    check_csrf(request, csrf)
    if user.role is not Role.ADMIN:
        return back(HOME[user.role], problem="Only the DSO (an administrator) changes keys.")
    admin = ctx.key_admin()
    if admin is None:
        return back("/admin", problem="The chain is not open yet; try again in a moment.")
    return admin


@router.post("/devices/{producer}/{device_id}/key")
def register_key(
    producer: str,
    device_id: str,
    request: Request,
    ctx: Context,
    csrf: Csrf,
    public_key: Annotated[str | None, Form()] = None,
) -> Response:
    """Register the device's key, or with a new `public_key` rotate it."""
    admin = _admin_change(request, ctx, csrf)
    if isinstance(admin, Response):
        return admin
    try:
        device = admin.register(producer, device_id, public_key or None)
    except (UnknownDevice, InvalidDevice, ChainError) as error:
        return back("/admin", problem=f"Key not registered: {error}")
    return back(
        "/admin", notice=f"Key of {producer}/{device_id} registered (tx {device.chain_tx})."
    )


@router.post("/devices/{producer}/{device_id}/key/revoke")
def revoke_key(
    producer: str, device_id: str, request: Request, ctx: Context, csrf: Csrf
) -> Response:
    admin = _admin_change(request, ctx, csrf)
    if isinstance(admin, Response):
        return admin
    try:
        device = admin.revoke(producer, device_id)
    except (UnknownDevice, ChainError) as error:
        return back("/admin", problem=f"Key not revoked: {error}")
    return back("/admin", notice=f"Key of {producer}/{device_id} revoked (tx {device.chain_tx}).")
