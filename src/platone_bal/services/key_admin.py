"""The DSO's changes to DeviceRegistry: register a device's key, rotate it, revoke it.

The registry lets only its admin change a key and keeps at most one current key per
device: a rotation is a revocation followed by the registration of the new key (two
transactions; between them the device's packets are refused, never accepted under the
old key). After each change the node's `DeviceKeys` is refreshed at once, so the next
packet and the next page view already see it.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

from platone_bal.domain.devices import Device, device_key, key_address
from platone_bal.domain.light_nodes import KeyState
from platone_bal.ports import ChainError, DeviceLedger, Store
from platone_bal.services.device_keys import DeviceKeys
from platone_bal.services.devices import InvalidDevice


class UnknownDevice(LookupError):
    """No such device of that producer."""


@dataclass(frozen=True)
class KeyAdmin:
    store: Store
    ledger: DeviceLedger
    keys: DeviceKeys

    def state(self, device: Device) -> KeyState | None:
        """The device's registry entry as last read (None: no key, or not read yet)."""
        return self.keys.state(device.producer, device.device_id) if self.keys.loaded else None

    def register(self, producer: str, device_id: str, public_key: str | None = None) -> Device:
        """Register the device's key (the one it was registered with, or `public_key`); a
        new key while another is current rotates it. Raises UnknownDevice, InvalidDevice
        (no usable key) or ChainError (the registry refused, e.g. `AlreadyRegistered`)."""
        device, owner_wallet = self._device(producer, device_id)
        text = public_key if public_key is not None else device.public_key
        if text is None:
            raise InvalidDevice(f"device {device_id!r} has no public key")
        address = key_address(text)
        if address is None:
            raise InvalidDevice("the key is neither an address nor an uncompressed public key")
        registry_id = device_key(producer, device_id)
        current = self.state(device)
        if public_key is not None and current is not None and not current.revoked:
            if current.key == address:
                raise ChainError(f"AlreadyRegistered: {device_id!r} already has that key")
            self.ledger.revoke(registry_id)
        tx = self.ledger.register(registry_id, address, owner_wallet)
        self.store.set_device_chain_tx(producer, device_id, tx, public_key=public_key)
        return self._changed(producer, device_id)

    def revoke(self, producer: str, device_id: str) -> Device:
        """Revoke the device's current key. Raises UnknownDevice or ChainError."""
        self._device(producer, device_id)
        tx = self.ledger.revoke(device_key(producer, device_id))
        self.store.set_device_chain_tx(producer, device_id, tx)
        return self._changed(producer, device_id)

    def _device(self, producer: str, device_id: str) -> tuple[Device, str]:
        device = self.store.get_device(producer, device_id)
        owner = self.store.get_user(producer)
        if device is None or owner is None:
            raise UnknownDevice(f"no device {device_id!r} of {producer!r}")
        return device, owner.wallet

    def _changed(self, producer: str, device_id: str) -> Device:
        with suppress(ChainError):  # the change is on chain; the poller reads it soon
            self.keys.refresh()
        device = self.store.get_device(producer, device_id)
        assert device is not None
        return device
