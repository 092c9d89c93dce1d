"""The broker configurations the BAL writes or ships keep what it acknowledges: saved
after every change, queues that do not drop, time to save on stop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from platone_bal.adapters import mosquitto_process
from platone_bal.adapters.dynsec_bootstrap import SERVICE_USERNAME, initial_dynsec_state
from platone_bal.adapters.mosquitto_config import MosquittoConfig, render_config
from platone_bal.adapters.mosquitto_process import ManagedMosquitto
from platone_bal.config import Settings
from platone_bal.domain.broker_policy import SERVICE_ROLE

ROOT = Path(__file__).resolve().parents[2]
DURABLE = {
    "persistence": "true",
    "autosave_on_changes": "true",
    "autosave_interval": "1",
    "queue_qos0_messages": "true",
}


def options(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            found.setdefault(key, []).append(value)
    return found


def config(tmp_path: Path, tls: tuple[Path, Path] | None = None) -> MosquittoConfig:
    return MosquittoConfig(
        directory=tmp_path / "mosquitto",
        bind="192.0.2.10",
        port=1883,
        tls_port=8883,
        tls=tls,
        service_password="service-secret",
        socket_path=tmp_path / "private" / "mqtt.sock",
    )


def assert_durable(found: dict[str, list[str]]) -> None:
    for key, value in DURABLE.items():
        assert found[key] == [value], key
    (queued,) = found["max_queued_messages"]
    assert int(queued) >= 1_000_000  # never 0: Mosquitto 2.0.11 then kicks denied publishers


def test_the_nodes_mosquitto_is_saved_after_every_change_and_denies_anonymous(
    tmp_path: Path,
) -> None:
    found = options(render_config(config(tmp_path), Path("/plugin.so"), "root"))
    assert_durable(found)
    assert found["allow_anonymous"] == ["false"]
    assert found["plugin"] == ["/plugin.so"]
    assert found["listener"] == [f"0 {tmp_path / 'private' / 'mqtt.sock'}", "1883 192.0.2.10"]
    assert found["use_username_as_clientid"] == ["true"]  # a session is its login's


def test_the_plugins_throttle_logins_first_and_journal_ingest_in_the_brokers_directory(
    tmp_path: Path,
) -> None:
    journal = Path("/cache/bal_journal-0123.so")
    throttle = Path("/cache/bal_throttle-4567.so")
    found = options(render_config(config(tmp_path), Path("/plugin.so"), "root", journal, throttle))
    # the throttle's login check runs before Dynamic Security's (callbacks run in order)
    assert found["plugin"] == [str(throttle), "/plugin.so", str(journal)]
    assert found["plugin_opt_exempt"] == ["bal-service"]
    directory = config(tmp_path).directory.resolve()
    # plugin_opt_* lines belong to the plugin line above them: the journal's come last
    assert found["plugin_opt_dir"] == [f"{directory}/journal"]
    assert found["plugin_opt_fsync"] == ["false"]
    assert int(found["plugin_opt_segment_bytes"][0]) > 0


def test_under_tls_the_only_public_listener_is_tls(tmp_path: Path) -> None:
    tls = (tmp_path / "cert.pem", tmp_path / "key.pem")
    found = options(render_config(config(tmp_path, tls), Path("/plugin.so"), "root"))
    assert found["listener"] == [f"0 {tmp_path / 'private' / 'mqtt.sock'}", "8883 192.0.2.10"]
    assert found["use_username_as_clientid"] == ["true"]
    assert found["certfile"] == [str(tls[0].resolve())]
    assert found["keyfile"] == [str(tls[1].resolve())]


def test_the_plugins_first_state_holds_only_the_service_account(tmp_path: Path) -> None:
    state = initial_dynsec_state("service-secret")
    (client,) = state["clients"]  # type: ignore[misc]
    assert client["username"] == SERVICE_USERNAME
    assert "service-secret" not in str(state)  # a PBKDF2 hash, not the password
    assert {role["rolename"] for role in client["roles"]} == {"admin", SERVICE_ROLE}
    assert state["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }


def test_the_shipped_mosquitto_conf_does_not_drop_acknowledged_messages() -> None:
    found = options((ROOT / "deploy" / "mosquitto.conf").read_text())
    assert_durable(found)


def test_compose_gives_every_service_time_to_save_on_stop() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    grace = Settings().shutdown_grace
    for name, service in compose["services"].items():
        declared = service.get("stop_grace_period", "10s")  # Docker's default is 10 s
        assert declared.endswith("s"), name
        assert float(declared[:-1]) > grace, name


def test_the_image_has_mosquitto_for_the_default_broker() -> None:
    installed = (ROOT / "deploy" / "Dockerfile").read_text().split("apt-get install")[1].split()
    # the broker, and what the node needs to build its plugins at its first start
    for package in ("mosquitto", "mosquitto-dev", "libmosquitto-dev", "gcc", "libc6-dev"):
        assert package in installed, package


def test_a_start_removes_the_socket_dir_a_killed_node_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mosquitto_process, "find_plugin", lambda: Path("/plugin.so"))
    data = tmp_path / "data"
    first = mosquitto_process.private_socket_path()
    ManagedMosquitto(replace(config(data), socket_path=first)).prepare()
    assert first.parent.is_dir() and first.parent.stat().st_mode & 0o777 == 0o700
    second = mosquitto_process.private_socket_path()
    ManagedMosquitto(replace(config(data), socket_path=second)).prepare()
    assert not first.parent.exists()  # the killed node's, gone
    assert second.parent.is_dir()
    second.parent.rmdir()
