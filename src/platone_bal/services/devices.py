"""Registering a producer's devices and authenticating the ones with MQTT credentials."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from platone_bal.adapters.passwords import hash_password, verify_password
from platone_bal.domain.devices import (
    Device,
    DeviceKind,
    device_login,
    key_address,
    parse_device_login,
    valid_device_id,
)
from platone_bal.domain.users import Role, User
from platone_bal.ports import Store


class InvalidDevice(ValueError):
    """The registration breaks a rule; the message says which."""


class DeviceService:
    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self.on_password: Callable[[str, str], object] = lambda _name, _password: None
        """Told (login, password) when a device is registered with credentials."""
        self.on_change: Callable[[], object] = lambda: None
        """Told after a device without credentials is registered, or one is disabled."""

    def register(
        self,
        producer: User,
        device_id: str,
        kind: DeviceKind,
        public_key: str | None = None,
        credentials: bool = False,
    ) -> tuple[Device, str | None]:
        """A new device of `producer`; with `credentials`, also its MQTT password
        (returned once, kept only as an argon2 hash)."""
        if producer.role is not Role.PRODUCER or producer.disabled:
            raise InvalidDevice(f"{producer.username!r} is not an enabled producer")
        if not valid_device_id(device_id):
            raise InvalidDevice(
                "device id must be 1-64 of letters, digits, '_', '.', ':', '-' "
                "(one MQTT topic level)"
            )
        if public_key is not None and key_address(public_key) is None:
            raise InvalidDevice(
                "public_key must be an Ethereum address or an uncompressed secp256k1 key (hex)"
            )
        secret = secrets.token_urlsafe(24) if credentials else None
        device = Device(
            producer=producer.username,
            device_id=device_id,
            kind=kind,
            created=self.clock(),
            public_key=public_key,
            secret_hash=hash_password(secret) if secret else None,
        )
        self.store.add_device(device)
        if secret is not None:
            self.on_password(device_login(producer.username, device_id), secret)
        else:
            self.on_change()
        return device, secret

    def disable(self, producer: str, device_id: str) -> Device | None:
        """Disable a device (its login and publishes stop); None if there is no such device."""
        if not self.store.disable_device(producer, device_id):
            return None
        self.on_change()
        return self.store.get_device(producer, device_id)

    def authenticate(self, login: str, secret: str) -> Device | None:
        """The enabled device of an enabled producer with this login and password."""
        parsed = parse_device_login(login)
        device = self.store.get_device(*parsed) if parsed else None
        producer = self.store.get_user(device.producer) if device else None
        if device is None or device.secret_hash is None:
            verify_password(_DUMMY_HASH, secret)  # same time as a real check
            return None
        if not verify_password(device.secret_hash, secret):
            return None
        if device.disabled or producer is None or producer.disabled:
            return None
        return device


_DUMMY_HASH = hash_password(secrets.token_hex(16))
