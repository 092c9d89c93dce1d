"""The `bal` command's offline parts through typer's runner, on a real data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.cli import app
from platone_bal.domain.users import Role

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BAL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_users_add_creates_a_producer_that_can_log_in(data_dir: Path) -> None:
    result = runner.invoke(app, ["users", "add", "producer1", "--password", "secret-pass-1"])
    assert result.exit_code == 0, result.output
    assert "topic platone/producer1" in result.output
    store = SqliteStore(data_dir / "scd.sqlite3")
    user = store.get_user("producer1")
    store.close()
    assert user is not None and user.role is Role.PRODUCER
    assert "secret-pass-1" not in user.password_hash and user.password_hash.startswith("$argon2id$")
    listed = runner.invoke(app, ["users", "list"])
    assert "producer1" in listed.output


def test_users_add_refuses_duplicates_and_weak_passwords(data_dir: Path) -> None:
    runner.invoke(app, ["users", "add", "producer1", "--password", "secret-pass-1"])
    again = runner.invoke(app, ["users", "add", "producer1", "--password", "secret-pass-1"])
    assert again.exit_code == 1 and "exists" in again.output
    weak = runner.invoke(app, ["users", "add", "producer2", "--password", "short"])
    assert weak.exit_code == 1 and "at least 8" in weak.output


def test_users_add_without_terminal_needs_a_password(data_dir: Path) -> None:
    result = runner.invoke(app, ["users", "add", "producer1"], input="")
    assert result.exit_code == 2 and "--password is required" in result.output


def test_invalid_settings_are_reported_not_raised(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAL_BROKER", "mosquitto")
    result = runner.invoke(app, ["users", "list"])
    assert result.exit_code == 2 and "invalid settings" in result.output
