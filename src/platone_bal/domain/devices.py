"""Devices of a producer: meters, PMUs and edge Light Nodes.

A device may get MQTT credentials of its own, with the login `NAME/DEVICE` (a '/' can
never be in a username, so device and user logins cannot collide). Such a device may
publish only to `platone/NAME/DEVICE` and below, and only readings of its own id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from platone_bal.domain.users import producer_topic

DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class DeviceKind(StrEnum):
    METER = "meter"
    PMU = "pmu"
    LIGHT_NODE = "light-node"


@dataclass(frozen=True, slots=True)
class Device:
    producer: str
    device_id: str
    kind: DeviceKind
    created: datetime
    public_key: str | None = None
    """Hex secp256k1 public key or address the device signs with, if it signs."""
    secret_hash: str | None = None
    """argon2 hash of its MQTT password, when it has credentials of its own."""
    disabled: bool = False
    chain_tx: str | None = None
    """Transaction of its latest DeviceRegistry change (key registered or revoked)."""

    @property
    def login(self) -> str | None:
        return device_login(self.producer, self.device_id) if self.secret_hash else None

    @property
    def topic(self) -> str:
        return f"{producer_topic(self.producer)}/{self.device_id}"


def valid_device_id(device_id: str) -> bool:
    """Letters, digits and '_', '.', ':', '-': one safe MQTT topic level."""
    return bool(DEVICE_ID.fullmatch(device_id))


def device_login(producer: str, device_id: str) -> str:
    return f"{producer}/{device_id}"


def parse_device_login(login: str | None) -> tuple[str, str] | None:
    """(producer, device) of a device login `NAME/DEVICE`, else None."""
    if login is None or login.count("/") != 1:
        return None
    producer, device_id = login.split("/")
    return (producer, device_id) if producer and device_id else None


def device_publish_refusal(producer: str, device_id: str, topic: str) -> str | None:
    """Why device `producer/device_id` may not publish on `topic`, or None."""
    own = f"{producer_topic(producer)}/{device_id}"
    if topic == own or topic.startswith(own + "/"):
        return None
    return f"device {device_login(producer, device_id)!r} may publish only under {own}"


def device_key(producer: str, device_id: str) -> bytes:
    """The device's id in DeviceRegistry: keccak256 of `NAME/DEVICE`."""
    return keccak(device_login(producer, device_id).encode("utf-8"))


def key_address(public_key: str) -> str | None:
    """The Ethereum address of a device key given as an address (0x + 40 hex) or an
    uncompressed secp256k1 public key (64 bytes, optionally 04-prefixed); None if neither."""
    text = public_key.removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    if len(raw) == 20:
        return str(to_checksum_address(raw))
    if len(raw) == 65 and raw[0] == 4:
        raw = raw[1:]
    if len(raw) == 64:
        return str(to_checksum_address(keccak(raw)[-20:]))
    return None
