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
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port

SUPERUSER = "bal"


def _debian_version(bindir: Path) -> int:
    name = bindir.parent.name
    return int(name) if name.isdigit() else 0


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, if there is one: Debian's
    PostgreSQL 15, else its newest other version (the store needs 14 or later), else
    the PATH."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: (_debian_version(path) == 15, _debian_version(path)),
        reverse=True,
    )
    for candidate in [*debian, Path("/usr/local/bin")]:
        if all((candidate / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return candidate
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


def require_bindir() -> Path:
    bindir = find_bindir()
    if bindir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) not installed"
        if os.environ.get("BAL_REQUIRE_INTEGRATION"):
            pytest.fail(f"{reason} (BAL_REQUIRE_INTEGRATION is set)")
        pytest.skip(f"{reason}; BAL_REQUIRE_INTEGRATION=1 makes this a failure")
    return bindir


class PostgresCluster:
    """One PostgreSQL server of its own, in a temporary directory."""

    def __init__(self, bindir: Path, *, fsync: bool = False) -> None:
        self.bindir = bindir
        self.fsync = fsync
        self.root = Path(tempfile.mkdtemp(prefix="bal-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._names = itertools.count(1)
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)

    def _command(self, *args: str) -> list[str]:
        """As the postgres system user when this runs as root (initdb refuses root)."""
        if not self._as_postgres:
            return list(args)
        if shutil.which("runuser"):
            return ["runuser", "-u", "postgres", "--", *args]
        account = pwd.getpwnam("postgres")
        return [
            "setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
            "--init-groups", *args,
        ]  # fmt: skip

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            self._command(*args), capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{result.stderr}")

    def initdb(self) -> None:
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
            "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.root}'",
            "max_connections = 100",
            "shared_buffers = 64MB",
        ]
        if not self.fsync:  # a test's data need not survive a crash of the machine
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")

    def start(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"bal_test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name from a counter
        return self.url(name)

    def log_tail(self, lines: int = 40) -> str:
        path = self.root / "log"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""


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
