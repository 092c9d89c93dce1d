"""The store contract, run against every backend.

Each test gets an empty store of each backend (`sqlite`, `postgres`); `open_store` opens
another store on the same database (a second node, or the same node after a restart).
PostgreSQL is reached only for the `postgres` tests: its fixture module and adapter are
imported there, so the SQLite half runs without them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from platone_bal.domain.users import Role, User
from platone_bal.ports import Store
from tests.contract.builders import add_user

BACKENDS = ("sqlite", "postgres")
_POSTGRES_FIXTURES = "tests.postgres_cluster"


def _backend_module(name: str) -> ModuleType:
    """A module a backend needs; a missing one skips its tests (fails them when
    BAL_REQUIRE_INTEGRATION is set, as in CI)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        message = f"backend not available: {name} cannot be imported ({error})"
        if os.environ.get("BAL_REQUIRE_INTEGRATION"):
            pytest.fail(message)
        pytest.skip(message)


def _postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty database from the `postgres_url` fixture, whose module is made a
    plugin here unless a conftest already made its fixtures visible."""
    try:
        return str(request.getfixturevalue("postgres_url"))
    except pytest.FixtureLookupError:
        pass
    module = _backend_module(_POSTGRES_FIXTURES)
    manager = request.config.pluginmanager
    if not manager.is_registered(module) and manager.get_plugin(_POSTGRES_FIXTURES) is None:
        manager.register(module, _POSTGRES_FIXTURES)
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens a store of the backend on this test's database; each one is closed after."""
    opener: Callable[[], Store]
    if request.param == "sqlite":
        sqlite = importlib.import_module("platone_bal.adapters.sqlite")  # never skipped
        path = tmp_path / "scd.sqlite3"

        def opener() -> Store:
            return sqlite.SqliteStore(path)  # type: ignore[no-any-return]

    else:
        url = _postgres_url(request)
        postgres = _backend_module("platone_bal.adapters.postgres")

        def opener() -> Store:
            return postgres.PostgresStore(url)  # type: ignore[no-any-return]

    opened: list[Store] = []

    def open_one() -> Store:
        store = opener()
        opened.append(store)
        return store

    yield open_one
    for store in reversed(opened):
        store.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    """An empty store of the backend."""
    return open_store()


@pytest.fixture
def alice(store: Store) -> User:
    """A producer."""
    return add_user(store, "alice")


@pytest.fixture
def bob(store: Store) -> User:
    """Another producer."""
    return add_user(store, "bob")


@pytest.fixture
def carol(store: Store) -> User:
    """A consumer."""
    return add_user(store, "carol", Role.CONSUMER)
