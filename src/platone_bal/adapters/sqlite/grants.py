"""Devices, grants and grant decisions on SQLite."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import datetime
from typing import Any

from platone_bal.adapters.sqlite.connection import SqliteDatabase, is_row_id
from platone_bal.domain.decisions import Decision
from platone_bal.domain.devices import Device, DeviceKind
from platone_bal.domain.grants import Grant, GrantStatus, Slice
from platone_bal.domain.readings import format_time, parse_time
from platone_bal.ports import StoredDecision, UserExists


class SqliteDevices(SqliteDatabase):
    """DeviceStore."""

    def add_device(self, device: Device) -> None:
        try:
            with self._transaction() as db:
                db.execute(
                    f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    (
                        device.producer,
                        device.device_id,
                        device.kind.value,
                        device.public_key,
                        device.secret_hash,
                        format_time(device.created),
                        int(device.disabled),
                        device.chain_tx,
                    ),
                )
        except sqlite3.IntegrityError:
            raise UserExists(f"device {device.device_id!r} of {device.producer!r} exists") from None

    def get_device(self, producer: str, device_id: str) -> Device | None:
        query = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE producer = ? AND device_id = ?"  # noqa: S608
        row = self._connection().execute(query, (producer, device_id)).fetchone()
        return _device(row) if row else None

    def list_devices(self, producer: str | None = None) -> list[Device]:
        where, params = ("producer = ?", (producer,)) if producer else ("1", ())
        query = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE {where} ORDER BY producer, device_id"  # noqa: S608
        return [_device(row) for row in self._connection().execute(query, params)]

    def set_device_chain_tx(self, producer: str, device_id: str, tx: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE devices SET chain_tx = ? WHERE producer = ? AND device_id = ?",
                (tx, producer, device_id),
            )

    def disable_device(self, producer: str, device_id: str) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE devices SET disabled = 1 WHERE producer = ? AND device_id = ?",
                (producer, device_id),
            )
        return cursor.rowcount > 0


class SqliteGrants(SqliteDatabase):
    """GrantStore: grants and the decisions that changed them."""

    def add_grant(self, grant: Grant, decision: Decision) -> Grant:
        with self._transaction() as db:
            cursor = db.execute(
                f"INSERT INTO grants ({_GRANT_FIELDS}) VALUES ({', '.join('?' * 12)})",  # noqa: S608
                _grant_row(grant),
            )
            assert cursor.lastrowid is not None
            grant = replace(grant, id=cursor.lastrowid)
            self._add_decision(db, replace(decision, grant_id=grant.id))
        return grant

    def save_grant(self, grant: Grant, decision: Decision | None = None) -> None:
        assignments = ", ".join(f"{name} = ?" for name in _GRANT_FIELDS.split(", "))
        with self._transaction() as db:
            db.execute(
                f"UPDATE grants SET {assignments} WHERE id = ?",  # noqa: S608
                (*_grant_row(grant), grant.id),
            )
            if decision is not None:
                self._add_decision(db, decision)

    @staticmethod
    def _add_decision(db: sqlite3.Connection, decision: Decision) -> None:
        db.execute(
            "INSERT INTO decisions (grant_id, status, decided_by, provider, consumer, topic,"
            " timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                decision.grant_id,
                decision.status.value,
                decision.decided_by,
                decision.provider,
                decision.consumer,
                decision.topic,
                decision.timestamp,
            ),
        )

    def pending_decisions(self, limit: int) -> list[StoredDecision]:
        return self._decision_rows("tx IS NULL AND error IS NULL ORDER BY id LIMIT ?", (limit,))

    def decision_recorded(
        self, decision_id: int, signature: str, signer: str, tx: str, block: int,
        chain_id: int, contract: str,
    ) -> None:  # fmt: skip
        with self._transaction() as db:
            db.execute(
                "UPDATE decisions SET signature = ?, signer = ?, tx = ?, block = ?,"
                " chain_id = ?, contract = ? WHERE id = ?",
                (signature, signer, tx, block, chain_id, contract, decision_id),
            )

    def decision_failed(self, decision_id: int, error: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE decisions SET error = ? WHERE id = ?", (error, decision_id))

    def decisions(self, grant_id: int) -> list[StoredDecision]:
        if not is_row_id(grant_id):
            return []
        return self._decision_rows("grant_id = ? ORDER BY id", (grant_id,))

    def _decision_rows(self, where: str, params: tuple[Any, ...]) -> list[StoredDecision]:
        query = f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE {where}"  # noqa: S608
        rows = self._connection().execute(query, params)
        return [
            StoredDecision(
                row[0],
                Decision(row[1], GrantStatus(row[2]), *row[3:8]),
                *row[8:],
            )
            for row in rows
        ]

    def grant(self, grant_id: int) -> Grant | None:
        if not is_row_id(grant_id):
            return None
        rows = self._grant_rows("id = ?", (grant_id,))
        return rows[0] if rows else None

    def grants_of(self, username: str | None) -> list[Grant]:
        """Every grant `username` is a party to (None: every grant), newest first."""
        if username is None:
            return self._grant_rows("1 = 1", ())
        return self._grant_rows("consumer = ? OR producer = ?", (username, username))

    def accepted_grants(self, consumer: str | None = None) -> list[Grant]:
        """The accepted grants of `consumer` (None: of everyone); some may have expired."""
        if consumer is None:
            return self._grant_rows("status = 'accepted'", ())
        return self._grant_rows("consumer = ? AND status = 'accepted'", (consumer,))

    def _grant_rows(self, where: str, params: tuple[Any, ...]) -> list[Grant]:
        rows = self._connection().execute(
            f"SELECT id, {_GRANT_FIELDS} FROM grants WHERE {where} ORDER BY id DESC",  # noqa: S608
            params,
        )
        return [_grant(row) for row in rows]


_DEVICE_COLUMNS = "producer, device_id, kind, public_key, secret_hash, created, disabled, chain_tx"


def _device(row: tuple[Any, ...]) -> Device:
    producer, device_id, kind, public_key, secret_hash, created, disabled, chain_tx = row
    return Device(
        producer,
        device_id,
        DeviceKind(kind),
        parse_time(created),
        public_key,
        secret_hash,
        bool(disabled),
        chain_tx,
    )


_DECISION_COLUMNS = (
    "id, grant_id, status, decided_by, provider, consumer, topic, timestamp,"
    " signature, signer, tx, block, chain_id, contract, error"
)
_GRANT_FIELDS = (
    "producer, consumer, status, devices, measurands, since, until, expires, created,"
    " modified, reason, decided_by"
)


def _names(values: frozenset[str] | None) -> str | None:
    return None if values is None else json.dumps(sorted(values))


def _time_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _grant_row(grant: Grant) -> tuple[Any, ...]:
    scope = grant.scope
    return (
        scope.producer,
        grant.consumer,
        grant.status.value,
        _names(scope.devices),
        _names(scope.measurands),
        _time_or_none(scope.since),
        _time_or_none(scope.until),
        _time_or_none(grant.expires),
        format_time(grant.created),
        format_time(grant.modified),
        grant.reason,
        grant.decided_by,
    )


def _grant(row: tuple[Any, ...]) -> Grant:
    (grant_id, producer, consumer, status, devices, measurands, since, until, expires,
     created, modified, reason, decided_by) = row  # fmt: skip

    def names(text: str | None) -> frozenset[str] | None:
        return None if text is None else frozenset(json.loads(text))

    def moment(text: str | None) -> datetime | None:
        if text is None:
            return None
        year, dash, rest = text.partition("-")
        if dash and year.isdigit() and len(year) < 4:  # written before years were padded
            text = f"{int(year):04d}-{rest}"
        return parse_time(text)

    return Grant(
        id=grant_id,
        consumer=consumer,
        scope=Slice(producer, names(devices), names(measurands), moment(since), moment(until)),
        status=GrantStatus(status),
        created=parse_time(created),
        modified=parse_time(modified),
        expires=moment(expires),
        reason=reason,
        decided_by=decided_by,
    )
