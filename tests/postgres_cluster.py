"""A throwaway PostgreSQL 15 cluster for tests, and the fixtures that hand it out.

`initdb` into a fresh temporary directory, `pg_ctl start` on a free port with its unix
socket in that directory, trust authentication for local and 127.0.0.1 connections
only; stopped (fast shutdown) and removed at the end. initdb refuses to run as root:
as root, the cluster is made and run as the `postgres` system user (the directory is
chowned to it). The binaries come from /usr/lib/postgresql/15/bin or the PATH (on CI,
`apt-get install postgresql`); without them the tests skip, or fail when
BAL_REQUIRE_INTEGRATION is set.

A test module uses the fixtures by naming them at its top level:
`postgres_server = postgres_cluster.postgres_server` and
`postgres_url = postgres_cluster.postgres_url` (after `from tests import postgres_cluster`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from platone_bal.stack.postgres import PostgresCluster as Cluster
from platone_bal.stack.postgres import find_bindir
from tests.conftest import free_port

__all__ = ["PostgresCluster", "find_bindir", "postgres_server", "postgres_url", "started_cluster"]


def require_bindir() -> Path:
    bindir = find_bindir()
    if bindir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) not installed"
        if os.environ.get("BAL_REQUIRE_INTEGRATION"):
            pytest.fail(f"{reason} (BAL_REQUIRE_INTEGRATION is set)")
        pytest.skip(f"{reason}; BAL_REQUIRE_INTEGRATION=1 makes this a failure")
    return bindir


class PostgresCluster(Cluster):
    """A throwaway server in a temporary directory, with databases made per test."""

    def __init__(self, bindir: Path, *, fsync: bool = False) -> None:
        super().__init__(bindir, Path(tempfile.mkdtemp(prefix="bal-pg-")), free_port(), fsync=fsync)
        self._names = itertools.count(1)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"bal_test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name from a counter
        return self.url(name)


def started_cluster(*, fsync: bool = False) -> PostgresCluster:
    """A new cluster, running; the caller removes it."""
    cluster = PostgresCluster(require_bindir(), fsync=fsync)
    try:
        cluster.initdb()
        cluster.start()
    except BaseException:
        cluster.remove()
        raise
    return cluster


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresCluster]:
    """One PostgreSQL server for the whole test session."""
    cluster = started_cluster()
    yield cluster
    cluster.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresCluster) -> str:
    """A fresh empty database of the session's server, per test."""
    return postgres_server.create_database()
