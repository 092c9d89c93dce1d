"""The access audit log bal-audit on SQLite: entries, and who they concern."""

from __future__ import annotations

from typing import Any

from platone_bal.adapters.sqlite.connection import SqliteDatabase
from platone_bal.adapters.store_rows import audit_column_rows, indexed_leaves

PRODUCERS = (
    "COALESCE((SELECT group_concat(producer, ' ') FROM"
    " (SELECT producer FROM audit_producers p WHERE p.idx = a.idx ORDER BY producer)), '')"
)
"""An entry's producers, space-separated, from the one place they are kept."""


class SqliteAccessLog(SqliteDatabase):
    """AccessLogStore. An entry concerns the producers listed in `audit_producers`
    (one row each, keyed by producer), so a producer's entries are an index range."""

    def audit_entries(
        self, *, who: str | None = None, producer: str | None = None, after: int = -1,
        limit: int = 100,
    ) -> list[tuple[int, bytes]]:  # fmt: skip
        clauses: list[str] = ["a.idx > ?"]
        params: list[Any] = [after]
        # `who` matches the user acting itself and through any of its platform clients
        by_who = "(a.who = ? OR substr(a.who, 1, ?) = ?)"
        concerns = "a.idx IN (SELECT idx FROM audit_producers WHERE producer = ? AND idx > ?)"
        if who is not None and producer is not None:
            clauses.append(f"({by_who} OR {concerns})")
            params += [who, len(who) + 5, f"{who} via ", producer, after]
        elif who is not None:
            clauses.append(by_who)
            params += [who, len(who) + 5, f"{who} via "]
        elif producer is not None:
            clauses.append(concerns)
            params += [producer, after]
        rows = self._connection().execute(
            f"SELECT a.idx, a.leaf FROM audit a WHERE {' AND '.join(clauses)}"  # noqa: S608
            " ORDER BY a.idx LIMIT ?",
            (*params, limit),
        )
        return indexed_leaves(rows)

    def audit_columns(self, after: int, limit: int) -> list[tuple[int, str, str, str, str]]:
        rows = self._connection().execute(
            f"SELECT a.idx, a.time, a.who, a.action, {PRODUCERS} FROM audit a"  # noqa: S608
            " WHERE a.idx > ? ORDER BY a.idx LIMIT ?",
            (after, limit),
        )
        return audit_column_rows(rows)
