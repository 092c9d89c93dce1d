"""Grants and the decisions that changed them, on their way to the chain: GrantStore.

A grant and the decision that made or changed it are written in one transaction, so
the registry never learns of a change the store does not hold. A scope's device and
measurand sets are text arrays: NULL is "all", an empty array is "none".
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from platone_bal.adapters.postgres.base import (
    Connection,
    PoolUser,
    Row,
    is_row_id,
    unavailable_on_faults,
    utc,
)
from platone_bal.adapters.store_rows import (
    DECISION_COLUMNS,
    DECISION_INSERT_COLUMNS,
    GRANT_COLUMNS,
    decision_from_row,
    decision_values,
    grant_from_row,
    grant_values,
    unchanged,
)
from platone_bal.domain.decisions import Decision
from platone_bal.domain.grants import Grant
from platone_bal.ports import StoredDecision


@unavailable_on_faults
class GrantTables(PoolUser):
    """GrantStore."""

    def add_grant(self, grant: Grant, decision: Decision) -> Grant:
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                f"INSERT INTO grants ({GRANT_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})"  # noqa: S608
                " RETURNING id",
                _grant_values(grant),
            ).fetchone()
            assert row is not None
            grant = replace(grant, id=int(row[0]))
            _add_decision(conn, replace(decision, grant_id=grant.id))
        return grant

    def save_grant(self, grant: Grant, decision: Decision | None = None) -> None:
        assignments = ", ".join(f"{name} = %s" for name in GRANT_COLUMNS.split(", "))
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                f"UPDATE grants SET {assignments} WHERE id = %s",  # noqa: S608
                (*_grant_values(grant), grant.id),
            )
            if decision is not None:
                _add_decision(conn, decision)

    def grant(self, grant_id: int) -> Grant | None:
        if not is_row_id(grant_id):
            return None
        return next(iter(self._grants("id = %s", (grant_id,))), None)

    def grants_of(self, username: str | None) -> list[Grant]:
        if username is None:
            return self._grants("TRUE", ())
        return self._grants("consumer = %s OR producer = %s", (username, username))

    def accepted_grants(self, consumer: str | None = None) -> list[Grant]:
        if consumer is None:
            return self._grants("status = 'accepted'", ())
        return self._grants("consumer = %s AND status = 'accepted'", (consumer,))

    def _grants(self, where: str, params: tuple[Any, ...]) -> list[Grant]:
        rows = self._all(
            f"SELECT id, {GRANT_COLUMNS} FROM grants WHERE {where} ORDER BY id DESC",  # noqa: S608
            params,
        )
        return [_grant(row) for row in rows]

    # decisions

    def pending_decisions(self, limit: int) -> list[StoredDecision]:
        return self._decisions("tx IS NULL AND error IS NULL ORDER BY id LIMIT %s", (limit,))

    def decision_recorded(
        self, decision_id: int, signature: str, signer: str, tx: str, block: int,
        chain_id: int, contract: str,
    ) -> None:  # fmt: skip
        self._run(
            "UPDATE decisions SET signature = %s, signer = %s, tx = %s, block = %s,"
            " chain_id = %s, contract = %s WHERE id = %s",
            (signature, signer, tx, block, chain_id, contract, decision_id),
        )

    def decision_failed(self, decision_id: int, error: str) -> None:
        self._run("UPDATE decisions SET error = %s WHERE id = %s", (error, decision_id))

    def decisions(self, grant_id: int) -> list[StoredDecision]:
        if not is_row_id(grant_id):
            return []
        return self._decisions("grant_id = %s ORDER BY id", (grant_id,))

    def _decisions(self, where: str, params: tuple[Any, ...]) -> list[StoredDecision]:
        rows = self._all(f"SELECT {DECISION_COLUMNS} FROM decisions WHERE {where}", params)  # noqa: S608
        return [decision_from_row(row) for row in rows]


def _add_decision(conn: Connection, decision: Decision) -> None:
    conn.execute(
        f"INSERT INTO decisions ({DECISION_INSERT_COLUMNS})"  # noqa: S608 (constant)
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        decision_values(decision),
    )


def _grant_values(grant: Grant) -> Row:
    """A grant's columns: times as timestamptz, device and measurand sets as text[]."""
    return grant_values(grant, stored_names=unchanged, stored_time=unchanged)


def _grant(row: Row) -> Grant:
    return grant_from_row(row, read_names=unchanged, read_time=utc, read_optional_time=utc)
