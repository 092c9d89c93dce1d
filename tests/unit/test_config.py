from pathlib import Path

import pytest
from pydantic import ValidationError

from platone_bal.config import Settings


def test_defaults_run_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BAL_DATA_DIR", "BAL_HTTP_PORT", "BAL_BROKER", "BAL_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.http_port, settings.mqtt_port, settings.broker, settings.store) == (
        8080,
        1883,
        "embedded",
        "sqlite",
    )
    assert settings.data_dir == Path("./bal-data") and settings.max_payload_bytes == 1 << 20


def test_environment_beats_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "bal.toml"
    toml.write_text('http_port = 9000\nmqtt_port = 9001\nlog_id = "shard-2"\n')
    monkeypatch.setenv("BAL_CONFIG_FILE", str(toml))
    monkeypatch.setenv("BAL_HTTP_PORT", "9100")
    settings = Settings()
    assert (settings.http_port, settings.mqtt_port, settings.log_id) == (9100, 9001, "shard-2")


def test_missing_toml_file_and_bad_values_fail_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAL_CONFIG_FILE", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError):
        Settings()
    monkeypatch.delenv("BAL_CONFIG_FILE")
    monkeypatch.setenv("BAL_HTTP_PORT", "eighty")
    with pytest.raises(ValidationError):
        Settings()


def test_external_broker_needs_service_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAL_BROKER", "mosquitto")
    with pytest.raises(ValidationError, match="BAL_MQTT_USERNAME"):
        Settings()
    monkeypatch.setenv("BAL_MQTT_USERNAME", "bal")
    monkeypatch.setenv("BAL_MQTT_PASSWORD", "pw")
    assert Settings().mqtt_password.get_secret_value() == "pw"  # type: ignore[union-attr]
