"""HTTPS and MQTT over TLS with real TLS clients, and a platform client's first day.

A DSO data server registered as a client gets a token with client credentials, posts
a CIM file to /v1/ingest over HTTPS and reads it back page by page; a device publishes
over MQTT with TLS; plaintext and untrusted connections fail.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from platone_bal.adapters.tls import ensure_self_signed, fingerprint
from platone_bal.simulate import connect
from tests.conftest import SAMPLE_XML, free_port
from tests.integration.nodes import NodeThread, wait_for
from tests.integration.stores import store_env


@pytest.fixture
def node(tmp_path: Path) -> NodeThread:
    cert, key = ensure_self_signed(tmp_path / "tls", ["127.0.0.1"])
    return NodeThread(tmp_path / "bal", tls_cert=cert, tls_key=key)


def test_a_platform_clients_first_day_over_https(tmp_path: Path) -> None:
    """Client credentials -> CIM over HTTPS -> pages -> validateData OK and KO ->
    getTransactions -> getByTransaction -> the same reading on certified/producer1/#."""
    cert, key = ensure_self_signed(tmp_path / "tls", ["127.0.0.1"])
    node = NodeThread(tmp_path / "bal", tls_cert=cert, tls_key=key, anchor_interval=0.5)
    with node:
        node.add_user("producer1", "secret-pass-1")
        received: list[dict[str, Any]] = []
        watcher = connect(
            f"mqtts://127.0.0.1:{node.settings.mqtt_tls_port}",
            "producer1",
            "secret-pass-1",
            ca_file=cert,
        )
        watcher.on_message = lambda _c, _u, message: received.append(json.loads(message.payload))
        subscribed: list[Any] = []
        watcher.on_subscribe = lambda _c, _u, _m, codes, _p: subscribed.extend(codes)
        watcher.subscribe("certified/producer1/#", qos=1)
        wait_for(lambda: bool(subscribed), what="SUBACK")

        registered = node.http.post(
            "/v1/clients",
            json={
                "name": "DSO data server",
                "username": "producer1",
                "scopes": ["data:ingest", "data:read", "verify"],
            },
            headers=node.token(),
        ).json()
        basic = base64.b64encode(
            f"{registered['client_id']}:{registered['client_secret']}".encode()
        ).decode()
        answer = node.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert answer.status_code == 200, answer.text
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        posted = node.http.post(
            "/v1/ingest",
            content=SAMPLE_XML,
            headers={**headers, "Content-Type": "application/xml"},
        )
        assert posted.status_code == 202, posted.text
        assert posted.json()["readings"] == 2

        readings, cursor = [], None
        while True:
            params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
            page = node.http.get("/v1/readings", params=params, headers=headers).json()
            readings += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [r["value"] for r in readings] == ["11.04", "3.45"]

        def validation(data: Any) -> httpx.Response:
            return node.http.request("GET", "/bap/validateData", json=data, headers=headers)

        wait_for(lambda: validation(readings).text == "OK", timeout=20, what="anchored, OK")
        changed = validation({**readings[0], "value": "11.40"})
        assert changed.text == "KO"
        assert changed.headers["bal-reason"] == "value: given '11.40', certified '11.04'"

        found = node.http.request(
            "GET", "/bap/getTransactions", json={"device": "11111111"}, headers=headers
        ).json()
        (transaction,) = found["transactions"]
        certified = node.http.get(
            "/api/certification/getByTransaction",
            params={"transaction": transaction["transactionHash"]},
            headers=headers,
        ).json()
        assert [r["value"] for r in certified["items"]] == ["11.04", "3.45"]
        proof = node.http.get(f"/v1/readings/{readings[0]['id']}/proof", headers=headers).json()
        assert proof["anchor"]["tx"] == transaction["transactionHash"]

        wait_for(lambda: len(received) == 2, timeout=10, what="certified messages")
        assert [m["leaf"]["value"] for m in received] == ["11.04", "3.45"]
        assert received[0]["leaf"] == proof["leaf"]
        watcher.disconnect()
        watcher.loop_stop()


def test_plaintext_and_untrusted_clients_are_refused(node: NodeThread) -> None:
    with node:
        port = node.settings.http_port
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{port}/healthz", timeout=5)  # system CAs only
        assert node.http.get("/healthz").status_code == 200
        # the embedded chain's JSON-RPC is behind the same certificate
        rpc = node.http.post(
            f"https://127.0.0.1:{node.settings.chain_rpc_port}",
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        )
        assert rpc.json()["result"] == hex(1337)


def test_devices_publish_over_mqtt_with_tls_only(node: NodeThread) -> None:
    settings = node.settings
    assert settings.tls is not None
    cert = settings.tls[0]
    with node:
        node.add_user("producer1", "secret-pass-1")
        with pytest.raises(ConnectionRefusedError):  # no plaintext listener beside TLS
            socket.create_connection(("127.0.0.1", settings.mqtt_port), timeout=2).close()
        client = connect(
            f"mqtts://127.0.0.1:{settings.mqtt_tls_port}",
            "producer1",
            "secret-pass-1",
            ca_file=cert,
        )
        client.publish("platone/producer1", SAMPLE_XML, qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        wait_for(lambda: len(node.get("/v1/readings")["items"]) == 2, what="TLS readings")
        with pytest.raises(ssl.SSLCertVerificationError):  # a client that trusts nothing here
            connect(f"mqtts://127.0.0.1:{settings.mqtt_tls_port}", "producer1", "secret-pass-1")


def test_bal_up_tls_makes_a_certificate_and_prints_its_fingerprint(tmp_path: Path) -> None:
    http_port = free_port()
    env = (
        os.environ
        | store_env(tmp_path / "data")
        | {
            "BAL_DATA_DIR": str(tmp_path / "data"),
            "BAL_HTTP_PORT": str(http_port),
            "BAL_MQTT_TLS_PORT": str(free_port()),
            "BAL_CHAIN_RPC_PORT": "0",
            "BAL_ADMIN_PASSWORD": "admin-pass-1",
        }
    )
    log = tmp_path / "up.log"
    bal = Path(sys.executable).with_name("bal")
    process = subprocess.Popen(
        [str(bal), "up", "--tls"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    cert = tmp_path / "data" / "tls" / "cert.pem"
    try:
        wait_for(lambda: "BAL up." in log.read_text(), timeout=30, what="bal up --tls")
        printed = re.search(r"SHA-256 fingerprint (\S+)", log.read_text())
        assert printed and printed.group(1) == fingerprint(cert), log.read_text()
        assert oct((tmp_path / "data" / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"
        assert f"https://127.0.0.1:{http_port}" in log.read_text()
        healthy = httpx.get(
            f"https://127.0.0.1:{http_port}/healthz", verify=ssl.create_default_context(cafile=cert)
        )
        assert healthy.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()
