"""A simulated month (readings with past measurement times) archived by `bal archive`
and restored by `bal restore`, both killed with SIGKILL at random moments, on SQLite and
PostgreSQL: each run after a kill finishes the work, and at every point each reading is
either live or in a listed archive file that still has its listed SHA3-256, never both,
never neither; `bal audit` passes at the end, and so does `bal verify-archive`."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from platone_bal.adapters.archive_files import LocalArchiveFiles
from platone_bal.domain.users import Role, User
from platone_bal.ports import ArchiveStatus, Store
from tests.contract.builders import LOG, anchor_all, make_user, pmu_message, save
from tests.integration.bal_process import BAL

pytestmark = pytest.mark.integration

DAYS = 30
MESSAGES_PER_DAY = 100
MEASURANDS = ("voltage", "current", "frequency", "power")
READINGS = DAYS * MESSAGES_PER_DAY * len(MEASURANDS)
KILLS = 6
"""Runs killed at most per command; the next one is let finish."""


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[dict[str, str], Callable[[], Store]]]:
    """(BAL_ environment of the store, a function opening it here)."""
    data = tmp_path / "data"
    data.mkdir()
    env = {"BAL_DATA_DIR": str(data), "BAL_ARCHIVE_DIR": str(tmp_path / "archives")}
    if request.param == "sqlite":
        from platone_bal.adapters.sqlite import SqliteStore

        yield env, lambda: SqliteStore(data / "scd.sqlite3")
        return
    try:
        from platone_bal.adapters.postgres import PostgresStore
        from tests.integration.stores import new_database

        url = new_database()
    except Exception as error:  # no PostgreSQL here
        if os.environ.get("BAL_REQUIRE_INTEGRATION"):
            pytest.fail(f"PostgreSQL unavailable: {error}")
        pytest.skip(f"PostgreSQL unavailable: {error}")
    yield {**env, "BAL_STORE": "postgres", "BAL_DATABASE_URL": url}, lambda: PostgresStore(url)


def fill(store: Store, first: datetime) -> None:
    alice: User = make_user("alice", Role.PRODUCER)
    store.add_user(alice, "{}")
    for day in range(DAYS):
        records = []
        for n in range(MESSAGES_PER_DAY):
            at = first + timedelta(days=day, seconds=n * 150)
            values = [(name, f"{n % 97}.{day}") for name in MEASURANDS]
            records.append(pmu_message(alice, f"pmu-{n % 7}", at, values, received=at))
        save(store, records)
    anchor_all(store)


def consistent(store: Store, files: LocalArchiveFiles) -> tuple[int, int]:
    """(live readings, readings only in archive files); fails unless every index of the
    log is exactly one of the two and every listed file is whole."""
    live = {
        r.index for day, _ in store.live_days(LOG) for r in store.day_readings(LOG, day, 10**12)
    }
    archived: set[int] = set()
    for record in store.archives(LOG):
        assert files.digest(record.file) == record.sha3, record.file
        readings, _ = files.read_data(record.file)
        indices = {reading.index for reading in readings}
        if record.status is ArchiveStatus.ARCHIVED:
            assert not indices & archived
            archived |= indices
        else:
            assert indices <= live
    assert not live & archived
    assert live | archived == set(range(READINGS))
    return len(live), len(archived)


def run_killed(
    command: list[str], env: dict[str, str], store: Store, files: LocalArchiveFiles
) -> int:
    """Run `command` again and again, SIGKILLed after a random delay, until one run
    ends by itself; checks the store after each kill. How many runs were killed."""
    killed = 0
    rng = random.Random(17)
    while True:
        process = subprocess.Popen(
            [str(BAL), *command], env={**os.environ, **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        delay = rng.uniform(0.6, 1.8) if killed < KILLS else 600.0
        try:
            output, _ = process.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed += 1
            consistent(store, files)
            continue
        assert process.returncode == 0, output
        return killed


def test_archive_and_restore_survive_sigkill(
    backend: tuple[dict[str, str], Callable[[], Store]], tmp_path: Path
) -> None:
    env, open_store = backend
    store = open_store()
    files = LocalArchiveFiles(tmp_path / "archives")
    try:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        first = today - timedelta(days=DAYS + 5)
        fill(store, first)
        assert consistent(store, files) == (READINGS, 0)
        days = len(store.live_days(LOG))

        env = {**env, "BAL_HOT_DAYS": "3"}
        started = time.monotonic()
        killed = run_killed(["archive"], env, store, files)
        print(f"archive: {killed} runs killed, {time.monotonic() - started:.1f} s in all")
        assert consistent(store, files) == (0, READINGS)
        assert len(store.archives(LOG)) == days

        span = ["--from", first.date().isoformat(), "--to", today.date().isoformat()]
        killed = run_killed(["restore", *span], env, store, files)
        print(f"restore: {killed} runs killed")
        assert consistent(store, files) == (READINGS, 0)
        assert {r.status for r in store.archives(LOG)} == {ArchiveStatus.RESTORED}

        audit = subprocess.run(
            [str(BAL), "audit", "--workers", "0"], env={**os.environ, **env},
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert "AUDIT OK" in audit.stdout
        one = store.archives(LOG)[0]
        verified = subprocess.run(
            [str(BAL), "verify-archive", str(files.path(one.file))],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stdout
        assert "VALID" in verified.stdout
    finally:
        store.close()
