"""Devices, grants and grant decisions on SQLite."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import datetime
from typing import Any

from platone_bal.adapters.sqlite.connection import SqliteDatabase, is_row_id
from platone_bal.adapters.store_rows import (
    DECISION_COLUMNS,
    DECISION_INSERT_COLUMNS,
    DEVICE_COLUMNS,
    GRANT_COLUMNS,
    Row,
    decision_from_row,
    decision_values,
    device_from_row,
    device_values,
    grant_from_row,
    grant_values,
)
from platone_bal.domain.decisions import Decision
from platone_bal.domain.devices import Device
from platone_bal.domain.grants import Grant
from platone_bal.domain.readings import format_time, parse_time
from platone_bal.ports import StoredDecision, UserExists


class SqliteDevices(SqliteDatabase):
    """DeviceStore."""

    def add_device(self, device: Device) -> None:
        try:
            with self._transaction() as db:
                db.execute(
                    f"INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    device_values(device, format_time),
                )
        except sqlite3.IntegrityError:
            raise UserExists(f"device {device.device_id!r} of {device.producer!r} exists") from None

    def get_device(self, producer: str, device_id: str) -> Device | None:
        query = f"SELECT {DEVICE_COLUMNS} FROM devices WHERE producer = ? AND device_id = ?"  # noqa: S608
        row = self._connection().execute(query, (producer, device_id)).fetchone()
        return device_from_row(row, parse_time) if row else None

    def list_devices(self, producer: str | None = None) -> list[Device]:
        where, params = ("producer = ?", (producer,)) if producer else ("1", ())
        query = f"SELECT {DEVICE_COLUMNS} FROM devices WHERE {where} ORDER BY producer, device_id"  # noqa: S608
        return [
            device_from_row(row, parse_time) for row in self._connection().execute(query, params)
        ]

    def set_device_chain_tx(
        self, producer: str, device_id: str, tx: str, public_key: str | None = None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE devices SET chain_tx = ?, public_key = COALESCE(?, public_key)"
                " WHERE producer = ? AND device_id = ?",
                (tx, public_key, producer, device_id),
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
                f"INSERT INTO grants ({GRANT_COLUMNS}) VALUES ({', '.join('?' * 12)})",  # noqa: S608
                _grant_values(grant),
            )
            assert cursor.lastrowid is not None
            grant = replace(grant, id=cursor.lastrowid)
            self._add_decision(db, replace(decision, grant_id=grant.id))
        return grant

    def save_grant(self, grant: Grant, decision: Decision | None = None) -> None:
        assignments = ", ".join(f"{name} = ?" for name in GRANT_COLUMNS.split(", "))
        with self._transaction() as db:
            db.execute(
                f"UPDATE grants SET {assignments} WHERE id = ?",  # noqa: S608
                (*_grant_values(grant), grant.id),
            )
            if decision is not None:
                self._add_decision(db, decision)

    @staticmethod
    def _add_decision(db: sqlite3.Connection, decision: Decision) -> None:
        db.execute(
            f"INSERT INTO decisions ({DECISION_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            decision_values(decision),
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
        query = f"SELECT {DECISION_COLUMNS} FROM decisions WHERE {where}"  # noqa: S608
        return [decision_from_row(row) for row in self._connection().execute(query, params)]

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
            f"SELECT id, {GRANT_COLUMNS} FROM grants WHERE {where} ORDER BY id DESC",  # noqa: S608
            params,
        )
        return [_grant(row) for row in rows]


def _grant_values(grant: Grant) -> Row:
    """A grant's columns: times as RFC 3339 text, device and measurand sets as JSON."""
    return grant_values(grant, stored_names=json.dumps, stored_time=format_time)


def _grant(row: Row) -> Grant:
    return grant_from_row(
        row, read_names=json.loads, read_time=parse_time, read_optional_time=_scope_time
    )


def _scope_time(text: str) -> datetime:
    """A grant's since, until or expires, also as written before years were padded."""
    year, dash, rest = text.partition("-")
    if dash and year.isdigit() and len(year) < 4:
        text = f"{int(year):04d}-{rest}"
    return parse_time(text)
