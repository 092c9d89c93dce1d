"""/v1/devices: a producer's meters, PMUs and Light Nodes, and their MQTT credentials."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from platone_bal.api.deps import Admin, Context, Ingester, Principal, Reader
from platone_bal.domain.devices import Device, DeviceKind, device_key, key_address
from platone_bal.domain.readings import format_time
from platone_bal.domain.users import Role, User
from platone_bal.ports import ChainError, DeviceLedger, UserExists
from platone_bal.services.devices import InvalidDevice

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


@router.post("/{device_id}/key", response_model=DeviceOut)
def register_key(device_id: str, producer: str, ctx: Context, _: Admin) -> DeviceOut:
    """Put the device's key in DeviceRegistry with its owner's wallet (admin/DSO only);
    after a revoke this registers the new key (rotation)."""
    device, owner = _device_of(ctx, producer, device_id)
    if device.public_key is None:
        raise HTTPException(422, f"device {device_id!r} has no public key")
    key = key_address(device.public_key)
    assert key is not None  # checked at registration
    return _on_chain(
        ctx, device, lambda ledger: ledger.register(device_key(producer, device_id), key, owner)
    )


@router.delete("/{device_id}/key", response_model=DeviceOut)
def revoke_key(device_id: str, producer: str, ctx: Context, _: Admin) -> DeviceOut:
    """Revoke the device's key in DeviceRegistry (admin/DSO only)."""
    device, _owner_wallet = _device_of(ctx, producer, device_id)
    return _on_chain(ctx, device, lambda ledger: ledger.revoke(device_key(producer, device_id)))


def _device_of(ctx: Context, producer: str, device_id: str) -> tuple[Device, str]:
    device = ctx.store.get_device(producer, device_id)
    owner = ctx.store.get_user(producer)
    if device is None or owner is None:
        raise HTTPException(404, f"no device {device_id!r} of {producer!r}")
    return device, owner.wallet


def _on_chain(ctx: Context, device: Device, change: Callable[[DeviceLedger], str]) -> DeviceOut:
    ledger = ctx.device_ledger()
    if ledger is None:
        raise HTTPException(503, "the chain is not open yet", headers={"Retry-After": "5"})
    try:
        tx = change(ledger)
    except ChainError as error:
        raise HTTPException(409, f"DeviceRegistry refused: {error}") from None
    ctx.store.set_device_chain_tx(device.producer, device.device_id, tx)
    updated = ctx.store.get_device(device.producer, device.device_id)
    assert updated is not None
    return DeviceOut.of(updated)
