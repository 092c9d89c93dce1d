"""API fixtures for unit tests: a node's app on a real SQLite store and its admin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from platone_bal.adapters.archive_files import LocalArchiveFiles
from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.api import ApiContext, create_api
from platone_bal.api.tokens import TokenSigner
from platone_bal.services.archiver import Archiver
from platone_bal.services.audit_trail import AuditTrail
from platone_bal.services.clients import ClientService
from platone_bal.services.devices import DeviceService
from platone_bal.services.grants import GrantService
from platone_bal.services.ingest import IngestService, now
from platone_bal.services.restore_jobs import Lifecycle, RestoreJobs
from platone_bal.services.setpoints import SetPointService
from platone_bal.services.users import UserService
from tests.contract.builders import LOG, fill_days
from tests.unit.test_api import KEY, login

MAX_PAYLOAD = 64 * 1024


def api_context(store: SqliteStore, users: UserService, ingest: IngestService) -> ApiContext:
    """What the API needs, on a real store, without a chain; archives beside the store."""
    files = LocalArchiveFiles(store.path.parent / "archives")
    archiver = Archiver(store, files, ingest.log_id, "node-a", hot_days=60, keep_restored_days=7)
    return ApiContext(
        store,
        users,
        TokenSigner(KEY, 600),
        ClientService(store),
        ingest,
        GrantService(store, now),
        DeviceService(store, now),
        AuditTrail(store, now),
        setpoints=SetPointService(store, now),
        lifecycle=Lifecycle(archiver, RestoreJobs(archiver)),
    )


@pytest.fixture
def client(store: SqliteStore, users: UserService) -> Iterator[TestClient]:
    users.ensure_admin("admin-pass-1")
    ingest = IngestService(store, log_id="bal-main", max_payload_bytes=MAX_PAYLOAD)
    context = api_context(store, users, ingest)
    ingest.start()
    with TestClient(create_api(context)) as test_client:
        yield test_client
    ingest.stop()


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    return login(client, "admin", "admin-pass-1")


ARCHIVER_TODAY = datetime(2026, 3, 10, 12, tzinfo=UTC)
"""The `archiver` fixture's clock: with 8 hot days, 2026-03-03 is the oldest hot day, so
fill_days's 2026-03-01 and 2026-03-02 are due."""


@pytest.fixture
def archiver(store: SqliteStore, tmp_path: Path) -> Archiver:
    """An archiver over `store` filled with fill_days's three days (none archived yet)."""
    fill_days(store)
    files = LocalArchiveFiles(tmp_path / "archives")
    return Archiver(store, files, LOG, "node-a", hot_days=8, keep_restored_days=7,
                    clock=lambda: ARCHIVER_TODAY)  # fmt: skip
