"""SQLite connections: one per thread, WAL, fsync on commit, errors as StoreUnavailable.

The ingest writer, the API workers and the broker each get their own connection. Writes
come in batches (one transaction per batch of messages, never per reading) and are
fsynced on commit, so a committed reading survives kill -9.
"""

from __future__ import annotations

import functools
import inspect
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from platone_bal.ports import MAX_ROW_ID, StoreUnavailable

IN_CHUNK = 500
"""Values per `IN (...)` list, well below SQLite's limit on bound parameters."""


def is_row_id(value: int) -> bool:
    """Whether SQLite can hold `value` as an id at all: asked for a larger one (a URL's
    id of 2^64), the answer is "no such row", not an OverflowError."""
    return -MAX_ROW_ID - 1 <= value <= MAX_ROW_ID


def _set_wal(connection: sqlite3.Connection, patience: float = 10.0) -> None:
    """WAL mode on a new connection. Right after a restart, while the first connection
    recovers the WAL, SQLite answers this pragma "database is locked" at once, without
    waiting for the busy timeout (seen: 500s on the first requests); so wait here."""
    deadline = time.monotonic() + patience
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class SqliteDatabase:
    """One SQLite file and the connections of the threads that use it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # owner only, also for a file made by an earlier version; SQLite gives its -wal
        # and -shm files the database file's mode
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if file.exists():
                file.chmod(0o600)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            _set_wal(connection)
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: the write lock is taken at once, so a transaction that reads
        the log's head and then appends never races another writer."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()


_T = TypeVar("_T")


def operational_errors_as_unavailable(cls: type[_T]) -> type[_T]:
    """Every public method (of the class and its bases) raises `StoreUnavailable` where
    SQLite raises OperationalError (locked, I/O error, disk full), so callers can tell a
    store fault (retry) from a data fault (reject) without knowing SQLite."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def translated(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except sqlite3.OperationalError as error:
                raise StoreUnavailable(f"SQLite: {error}") from error

        return translated

    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_"):
            setattr(cls, name, wrap(member))
    return cls
