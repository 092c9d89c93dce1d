"""The Shared Customer Database on SQLite: one module per aggregate, composed in `store`."""

from platone_bal.adapters.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
