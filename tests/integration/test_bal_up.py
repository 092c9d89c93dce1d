"""`bal up` as a person runs it: a process, a generated admin, SIGTERM, restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from platone_bal.simulate import connect
from tests.conftest import SAMPLE_XML, free_port
from tests.integration.nodes import wait_for
from tests.integration.stores import store_env


def start(data_dir: Path, http_port: int, mqtt_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = (
        os.environ
        | store_env(data_dir)
        | {
            "BAL_DATA_DIR": str(data_dir),
            "BAL_HTTP_PORT": str(http_port),
            "BAL_MQTT_PORT": str(mqtt_port),
            "BAL_CHAIN_RPC_PORT": str(free_port()),
        }
    )
    env.pop("BAL_ADMIN_PASSWORD", None)
    bal = Path(sys.executable).with_name("bal")
    return subprocess.Popen(
        [str(bal), "up"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def test_up_generates_admin_once_stops_on_sigterm_and_keeps_data(tmp_path: Path) -> None:
    http_port, mqtt_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    first_log = tmp_path / "first.log"
    process = start(tmp_path / "data", http_port, mqtt_port, first_log)
    try:
        wait_for(healthy, timeout=30, what="bal up")
        match = re.search(r"password: (\S+)", first_log.read_text())
        assert match, first_log.read_text()
        password = match.group(1)
        token = httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "password", "username": "admin", "password": password},
        ).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        created = httpx.post(
            f"{base}/v1/users",
            json={"username": "producer1", "password": "secret-pass-1", "role": "producer"},
            headers=admin,
        )
        assert created.status_code == 201
        client = connect(f"mqtt://127.0.0.1:{mqtt_port}", "producer1", "secret-pass-1")
        client.publish("platone/producer1", SAMPLE_XML, qos=1).wait_for_publish(5)
        client.disconnect()
        wait_for(
            lambda: len(httpx.get(f"{base}/v1/readings", headers=admin).json()["items"]) == 2,
            what="readings",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    assert "BAL stopped." in first_log.read_text()

    second_log = tmp_path / "second.log"
    process = start(tmp_path / "data", http_port, mqtt_port, second_log)
    try:
        wait_for(healthy, timeout=30, what="bal up again")
        assert "password:" not in second_log.read_text()  # printed once, on first start only
        token = httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "password", "username": "admin", "password": password},
        ).json()["access_token"]
        readings = httpx.get(
            f"{base}/v1/readings", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert [r["value"] for r in readings["items"]] == ["11.04", "3.45"]
        connect(f"mqtt://127.0.0.1:{mqtt_port}", "producer1", "secret-pass-1").disconnect()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    assert oct((tmp_path / "data").stat().st_mode & 0o777) == "0o700"
    secrets_dir = tmp_path / "data" / "secrets"
    assert oct(secrets_dir.stat().st_mode & 0o777) == "0o700"
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in secrets_dir.iterdir())
