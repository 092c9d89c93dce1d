"""/v1/devices: a producer's meters, PMUs and Light Nodes, and their MQTT credentials."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from platone_bal.api.deps import Admin, Context, Ingester, Principal, Reader
from platone_bal.domain.devices import Device, DeviceKind
from platone_bal.domain.readings import format_time
from platone_bal.domain.users import Role, User
from platone_bal.ports import ChainError, UserExists
from platone_bal.services.devices import InvalidDevice
from platone_bal.services.key_admin import KeyAdmin, UnknownDevice

router = APIRouter(prefix="/v1/devices", tags=["devices"])


class NewDevice(BaseModel):
    device_id: str = Field(examples=["meter0042"])
    kind: DeviceKind
    public_key: str | None = Field(default=None, max_length=200)
    mqtt_credentials: bool = Field(
        default=False, description="Give the device its own MQTT login NAME/DEVICE"
    )
    producer: str | None = Field(default=None, description="Admins: whose device it is")


class DeviceOut(BaseModel):
    producer: str
    device_id: str
    kind: DeviceKind
    public_key: str | None
    topic: str = Field(description="Where the device publishes: platone/NAME/DEVICE")
    mqtt_username: str | None
    created: str
    disabled: bool
    chain_tx: str | None = Field(description="Latest DeviceRegistry change of its key")

    @classmethod
    def of(cls, device: Device) -> DeviceOut:
        return cls(
            producer=device.producer,
            device_id=device.device_id,
            kind=device.kind,
            public_key=device.public_key,
            topic=device.topic,
            mqtt_username=device.login,
            created=format_time(device.created),
            disabled=device.disabled,
            chain_tx=device.chain_tx,
        )


class RegisteredDevice(DeviceOut):
    mqtt_password: str | None = Field(description="Shown once; only its argon2 hash is kept")


def _owner(ctx: Context, who: Principal, producer: str | None) -> User:
    """The producer whose devices these are: yourself, or anyone's for an admin."""
    if who.user.role is Role.ADMIN and producer is not None:
        owner = ctx.store.get_user(producer)
        if owner is None:
            raise HTTPException(404, f"no producer {producer!r}")
        return owner
    if who.user.role is not Role.PRODUCER or producer not in (None, who.user.username):
        raise HTTPException(403, "devices belong to producers")
    return who.user


@router.post("", status_code=201, response_model=RegisteredDevice)
def register_device(body: NewDevice, ctx: Context, who: Ingester) -> RegisteredDevice:
    """Register a device; with `mqtt_credentials` it may publish under its own topic."""
    owner = _owner(ctx, who, body.producer)
    try:
        device, secret = ctx.devices.register(
            owner, body.device_id, body.kind, body.public_key, body.mqtt_credentials
        )
    except InvalidDevice as error:
        raise HTTPException(422, str(error)) from None
    except UserExists as error:
        raise HTTPException(409, str(error)) from None
    return RegisteredDevice(**DeviceOut.of(device).model_dump(), mqtt_password=secret)


@router.get("", response_model=list[DeviceOut])
def list_devices(ctx: Context, who: Reader) -> list[DeviceOut]:
    """Your devices (admins: everyone's)."""
    if who.user.role is Role.CONSUMER:
        raise HTTPException(403, "devices belong to producers")
    producer = None if who.user.role is Role.ADMIN else who.user.username
    return [DeviceOut.of(device) for device in ctx.store.list_devices(producer)]


@router.post("/{device_id}/disable", response_model=DeviceOut)
def disable_device(
    device_id: str, ctx: Context, who: Ingester, producer: str | None = None
) -> DeviceOut:
    """Disable a device: its MQTT login and publishes are refused from now on."""
    owner = _owner(ctx, who, producer)
    device = ctx.devices.disable(owner.username, device_id)
    if device is None:
        raise HTTPException(404, f"no device {device_id!r} of {owner.username!r}")
    return DeviceOut.of(device)


class KeyBody(BaseModel):
    public_key: str | None = Field(
        default=None,
        max_length=200,
        description="A new key (address or uncompressed public key): rotates the current one",
    )


@router.post("/{device_id}/key", response_model=DeviceOut)
def register_key(
    device_id: str, producer: str, ctx: Context, _: Admin, body: KeyBody | None = None
) -> DeviceOut:
    """Put the device's key in DeviceRegistry with its owner's wallet (admin/DSO only):
    the key it was registered with, or a new `public_key`, which rotates a current key
    (revoke, then register). After a revoke this registers the key again."""
    new_key = body.public_key if body is not None else None
    return _on_chain(ctx, lambda admin: admin.register(producer, device_id, new_key))


@router.delete("/{device_id}/key", response_model=DeviceOut)
def revoke_key(device_id: str, producer: str, ctx: Context, _: Admin) -> DeviceOut:
    """Revoke the device's key in DeviceRegistry (admin/DSO only)."""
    return _on_chain(ctx, lambda admin: admin.revoke(producer, device_id))


def _on_chain(ctx: Context, change: Callable[[KeyAdmin], Device]) -> DeviceOut:
    admin = ctx.key_admin()
    if admin is None:
        raise HTTPException(503, "the chain is not open yet", headers={"Retry-After": "5"})
    try:
        return DeviceOut.of(change(admin))
    except UnknownDevice as error:
        raise HTTPException(404, str(error)) from None
    except InvalidDevice as error:
        raise HTTPException(422, str(error)) from None
    except ChainError as error:
        raise HTTPException(409, f"DeviceRegistry refused: {error}") from None
