"""A producer's devices, their logins and registered keys: DeviceStore.

A device of an unknown producer, or a second device with the same id, is refused
with `UserExists` (the foreign key and the primary key), as on SQLite.
"""

from __future__ import annotations

import psycopg

from platone_bal.adapters.postgres.base import PoolUser, unavailable_on_faults, utc
from platone_bal.adapters.store_rows import (
    DEVICE_COLUMNS,
    device_from_row,
    device_values,
    unchanged,
)
from platone_bal.domain.devices import Device
from platone_bal.ports import UserExists


@unavailable_on_faults
class DeviceTables(PoolUser):
    """DeviceStore."""

    def add_device(self, device: Device) -> None:
        try:
            self._run(
                f"INSERT INTO devices ({DEVICE_COLUMNS})"  # noqa: S608 (constant)
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                device_values(device, unchanged),
            )
        except psycopg.IntegrityError:
            raise UserExists(f"device {device.device_id!r} of {device.producer!r} exists") from None

    def get_device(self, producer: str, device_id: str) -> Device | None:
        row = self._one(
            f"SELECT {DEVICE_COLUMNS} FROM devices WHERE producer = %s AND device_id = %s",  # noqa: S608
            (producer, device_id),
        )
        return device_from_row(row, utc) if row else None

    def list_devices(self, producer: str | None = None) -> list[Device]:
        if producer:
            rows = self._all(
                f"SELECT {DEVICE_COLUMNS} FROM devices WHERE producer = %s"  # noqa: S608
                " ORDER BY producer, device_id",
                (producer,),
            )
        else:
            rows = self._all(
                f"SELECT {DEVICE_COLUMNS} FROM devices ORDER BY producer, device_id"  # noqa: S608
            )
        return [device_from_row(row, utc) for row in rows]

    def disable_device(self, producer: str, device_id: str) -> bool:
        changed = self._run(
            "UPDATE devices SET disabled = true WHERE producer = %s AND device_id = %s",
            (producer, device_id),
        )
        return changed > 0

    def set_device_chain_tx(
        self, producer: str, device_id: str, tx: str, public_key: str | None = None
    ) -> None:
        self._run(
            "UPDATE devices SET chain_tx = %s, public_key = COALESCE(%s, public_key)"
            " WHERE producer = %s AND device_id = %s",
            (tx, public_key, producer, device_id),
        )
