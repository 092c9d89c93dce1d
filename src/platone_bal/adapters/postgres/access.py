"""The access audit log bal-audit, searched by who acted and whose data it was.

The producers an entry concerns are rows of `audit_producers` (index, position,
producer) with an index on the producer, so "what concerned alice" is an index range,
not a substring search of a padded column. `audit_columns` still gives them as one
string, " alice bob " (padded as SQLite stores it, for `bal audit` to compare with the
certified entry after `split()`).
"""

from __future__ import annotations

from typing import Any

from platone_bal.adapters.postgres.base import PoolUser, unavailable_on_faults
from platone_bal.adapters.store_rows import audit_column_rows, indexed_leaves

PRODUCERS_TEXT = (
    "' ' || COALESCE((SELECT string_agg(p.producer, ' ' ORDER BY p.pos)"
    " FROM audit_producers p WHERE p.idx = a.idx), '') || ' '"
)
"""SQL (on `audit a`): the producers of an entry as SQLite's padded column holds them."""


@unavailable_on_faults
class AccessTables(PoolUser):
    """AccessLogStore."""

    def audit_entries(
        self,
        *,
        who: str | None = None,
        producer: str | None = None,
        after: int = -1,
        limit: int = 100,
    ) -> list[tuple[int, bytes]]:
        # `who` matches the user acting itself and through any of its platform clients
        by_who = "(a.who = %s OR starts_with(a.who, %s))"
        concerning = (
            "EXISTS (SELECT 1 FROM audit_producers p WHERE p.idx = a.idx AND p.producer = %s)"
        )
        clauses: list[str] = ["a.idx > %s"]
        params: list[Any] = [after]
        if who is not None and producer is not None:
            clauses.append(f"({by_who} OR {concerning})")
            params += [who, f"{who} via ", producer]
        elif who is not None:
            clauses.append(by_who)
            params += [who, f"{who} via "]
        elif producer is not None:
            rows = self._all(
                "SELECT a.idx, a.leaf FROM audit_producers p JOIN audit a ON a.idx = p.idx"
                " WHERE p.producer = %s AND p.idx > %s ORDER BY p.idx LIMIT %s",
                (producer, after, limit),
            )
            return indexed_leaves(rows)
        rows = self._all(
            f"SELECT a.idx, a.leaf FROM audit a WHERE {' AND '.join(clauses)}"  # noqa: S608
            " ORDER BY a.idx LIMIT %s",
            (*params, limit),
        )
        return indexed_leaves(rows)

    def audit_columns(self, after: int, limit: int) -> list[tuple[int, str, str, str, str]]:
        rows = self._all(
            f"SELECT a.idx, a.time, a.who, a.action, {PRODUCERS_TEXT} FROM audit a"  # noqa: S608
            " WHERE a.idx > %s ORDER BY a.idx LIMIT %s",
            (after, limit),
        )
        return audit_column_rows(rows)
