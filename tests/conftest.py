"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
import random
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.adapters.wallets import Wallets
from platone_bal.domain.users import Role, User
from platone_bal.services.users import UserService

DATA = Path(__file__).parent / "data"
SAMPLE_XML = (DATA / "meter-readings.xml").read_bytes()
SAMPLE_PMU = (DATA / "pmu.json").read_bytes()


_PORTS = list(range(20000, 32000))
random.shuffle(_PORTS)


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range (32768 and up here): a port
    the kernel hands out with bind(0) can be taken, before the node binds it, as the
    local port of any outgoing connection (seen: a node that could not start). Each
    port is offered once per test run."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while _PORTS:
        port = _PORTS.pop()
        if port >= low:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left below the ephemeral range")


def require_binary(name: str) -> str:
    """Path of an outside program an integration test needs.

    Skips when it is missing, unless BAL_REQUIRE_INTEGRATION is set (as in CI): then a
    missing service is a failure, never a silent skip.
    """
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path is None:
        if os.environ.get("BAL_REQUIRE_INTEGRATION"):
            pytest.fail(f"{name} is required (BAL_REQUIRE_INTEGRATION is set) but not installed")
        pytest.skip(f"{name} not installed; BAL_REQUIRE_INTEGRATION=1 makes this a failure")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(tmp_path / "scd.sqlite3")
    yield db
    db.close()


@pytest.fixture
def users(store: SqliteStore) -> UserService:
    return UserService(store, Wallets("test-passphrase"))


@pytest.fixture
def producer(users: UserService) -> User:
    return users.create("producer1", "secret-pass-1", Role.PRODUCER)
