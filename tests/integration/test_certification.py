"""Certification end to end on a real node: MQTT publish -> checkpoint -> anchor on the
embedded EVM -> proof -> `bal verify` (offline and over the node's JSON-RPC) -> `bal audit`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from platone_bal.cli import app
from platone_bal.simulate import connect
from tests.conftest import SAMPLE_PMU, SAMPLE_XML, free_port
from tests.integration.nodes import NodeThread, wait_for
from tests.integration.nodes import publish_as_producer1 as publish
from tests.integration.stores import execute, settings_env, store_env

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeThread]:
    with NodeThread(tmp_path / "data", anchor_interval=0.5) as running:
        running.add_user("producer1", "secret-pass-1")
        yield running


def anchored_proof(node: NodeThread, reading_id: int) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def anchored() -> bool:
        answer = node.http.get(f"/v1/readings/{reading_id}/proof", headers=node.token())
        if answer.status_code == 200 and answer.json()["anchor"] is not None:
            found.update(answer.json())
            return True
        return False

    wait_for(anchored, timeout=30, what="an anchored proof")
    return found


def verify(path: Path, *args: str) -> Any:
    return runner.invoke(app, ["verify", str(path), *args])


def test_a_published_reading_gets_an_anchored_proof_that_verifies(
    node: NodeThread, tmp_path: Path
) -> None:
    publish(node, SAMPLE_XML, SAMPLE_PMU)
    wait_for(lambda: len(node.get("/v1/readings")["items"]) == 4, what="4 readings")  # type: ignore[arg-type]
    reading = node.get("/v1/readings")["items"][2]  # type: ignore[index]
    bundle = anchored_proof(node, reading["id"])
    assert bundle["format"] == "platone-bal/proof@1" and bundle["index"] == reading["index"]
    assert bundle["leaf"]["value"] == "11" and bundle["leaf"]["device"] == "pmu1"
    assert bundle["anchor"]["chain_id"] == 1337
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(bundle))

    offline = verify(path)
    assert offline.exit_code == 0, offline.output
    assert "SKIP anchor" in offline.output and "VALID" in offline.output

    rpc = f"http://127.0.0.1:{node.settings.chain_rpc_port}"
    online = verify(path, "--rpc", rpc)
    assert online.exit_code == 0, online.output
    assert "PASS anchor" in online.output

    # one character of the value changed: the leaf check fails, exit status 1
    bundle["leaf"]["value"] = "12"
    path.write_text(json.dumps(bundle))
    tampered = verify(path, "--rpc", rpc)
    assert tampered.exit_code == 1
    assert "FAIL leaf" in tampered.output and "INVALID" in tampered.output

    # the anchors listing and checkpoint listing show the same transaction
    anchors = node.get("/v1/anchors", log="bal-main")["items"]
    assert bundle["anchor"]["tx"] in [a["tx"] for a in anchors]  # type: ignore[union-attr]
    checkpoints = node.get("/v1/logs/bal-main/checkpoints")["items"]
    assert any(c["anchor"] == bundle["anchor"] for c in checkpoints)  # type: ignore[union-attr,index]

    # the seed's Data Certification view of the PMU's dataset
    view = node.get("/v1/certifications", device="pmu1")
    assert view["transactionHash"] is not None and view["dataset"]["readings"] == 2  # type: ignore[index]


def test_rpc_answers_the_read_only_methods_and_refuses_writes(node: NodeThread) -> None:
    publish(node, SAMPLE_PMU)
    wait_for(
        lambda: bool(node.get("/v1/anchors", log="bal-main")["items"]), timeout=30, what="an anchor"
    )
    anchor = node.get("/v1/anchors", log="bal-main")["items"][0]  # type: ignore[index]
    url = f"http://127.0.0.1:{node.settings.chain_rpc_port}"

    def call(method: str, *params: Any) -> Any:
        answer = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
        return answer.json()

    assert call("eth_chainId")["result"] == "0x539"
    height = int(call("eth_blockNumber")["result"], 16)
    assert height >= anchor["block"]
    block = call("eth_getBlockByNumber", hex(anchor["block"]), False)["result"]
    assert anchor["tx"] in block["transactions"]
    receipt = call("eth_getTransactionReceipt", anchor["tx"])["result"]
    assert receipt["status"] == "0x1" and receipt["to"].lower() == anchor["contract"].lower()
    logs = call("eth_getLogs", {"fromBlock": "0x0", "address": anchor["contract"]})["result"]
    assert any(entry["transactionHash"] == anchor["tx"] for entry in logs)
    refused = call("eth_sendRawTransaction", "0x00")
    assert refused["error"]["code"] == -32601


def test_audit_names_the_index_of_a_changed_value(node: NodeThread) -> None:
    publish(node, SAMPLE_XML, SAMPLE_PMU)
    wait_for(
        lambda: bool(node.get("/v1/anchors", log="bal-main")["items"]), timeout=30, what="an anchor"
    )
    node.node.request_stop()
    node._thread.join(20)
    env = {
        "BAL_DATA_DIR": str(node.settings.data_dir),
        "BAL_CHAIN_RPC_PORT": "0",
        **settings_env(node.settings),
    }
    clean = runner.invoke(app, ["audit"], env=env)
    assert clean.exit_code == 0, clean.output
    assert "AUDIT OK" in clean.output and "4 readings" in clean.output
    execute(node.settings, "UPDATE readings SET value = '3.46' WHERE idx = 1")
    broken = runner.invoke(app, ["audit"], env=env)
    assert broken.exit_code == 1
    assert "index 1" in broken.output and "value" in broken.output


def test_old_proofs_verify_after_kill_9_and_restart(tmp_path: Path) -> None:
    """`bal up` as a process, killed with SIGKILL: the chain in the data dir keeps the anchor."""
    http_port, mqtt_port, rpc_port = free_port(), free_port(), free_port()
    env = (
        os.environ
        | store_env(tmp_path / "data")
        | {
            "BAL_DATA_DIR": str(tmp_path / "data"),
            "BAL_HTTP_PORT": str(http_port),
            "BAL_MQTT_PORT": str(mqtt_port),
            "BAL_CHAIN_RPC_PORT": str(rpc_port),
            "BAL_ADMIN_PASSWORD": "admin-pass-1",
            "BAL_ANCHOR_INTERVAL": "0.5",
        }
    )
    bal = str(Path(sys.executable).with_name("bal"))
    base = f"http://127.0.0.1:{http_port}"

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen([bal, "up"], env=env, stdout=subprocess.DEVNULL)

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=60, what="bal up")
        return process

    def token() -> dict[str, str]:
        form = {"grant_type": "password", "username": "admin", "password": "admin-pass-1"}
        answer = httpx.post(f"{base}/oauth/token", data=form)
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    process = start()
    try:
        user = {"username": "producer1", "password": "secret-pass-1", "role": "producer"}
        httpx.post(f"{base}/v1/users", json=user, headers=token()).raise_for_status()
        client = connect(f"mqtt://127.0.0.1:{mqtt_port}", "producer1", "secret-pass-1")
        client.publish("platone/producer1/pmu1", SAMPLE_PMU, qos=1).wait_for_publish(5)
        client.disconnect()
        proof: dict[str, Any] = {}

        def anchored() -> bool:
            answer = httpx.get(f"{base}/v1/readings/1/proof", headers=token())
            if answer.status_code == 200 and answer.json()["anchor"] is not None:
                proof.update(answer.json())
                return True
            return False

        wait_for(anchored, timeout=30, what="an anchored proof")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    process = start()
    try:
        checked = verify(path, "--rpc", f"http://127.0.0.1:{rpc_port}")
        assert checked.exit_code == 0, checked.output
        assert "PASS anchor" in checked.output
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
