"""The JSON-RPC chain adapter against a real Ethereum node from npm (ganache), with
`bal chain deploy`, anchoring while the node goes down and comes back, and a restart of
the node on its persistent database."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from platone_bal.adapters.node_keys import NodeKeys
from platone_bal.adapters.wallets import Wallets
from platone_bal.cli import app
from tests.conftest import SAMPLE_PMU, SAMPLE_XML, free_port
from tests.integration.nodes import NodeThread, wait_for
from tests.integration.nodes import publish_as_producer1 as publish
from tests.integration.stores import store_env

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
GANACHE = ROOT / "node_modules" / ".bin" / "ganache"
PASSPHRASE = "test-keystore-passphrase"
runner = CliRunner()


class Ganache:
    def __init__(self, db_path: Path, port: int, keys: list[bytes]) -> None:
        self.db_path, self.port, self.keys = db_path, port, keys
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        accounts = [f"--wallet.accounts=0x{key.hex()},{10**24}" for key in self.keys]
        self.process = subprocess.Popen(
            [
                str(GANACHE),
                "--server.host=127.0.0.1",
                f"--server.port={self.port}",
                f"--database.dbPath={self.db_path}",
                "--chain.chainId=1337",
                "--chain.hardfork=shanghai",
                "--logging.quiet",
                *accounts,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, timeout=60, what="ganache")

    def answers(self) -> bool:
        try:
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
            return httpx.post(self.url, json=body, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None


def funded_ganache(tmp_path: Path, data_dir: Path) -> Ganache:
    """A started ganache whose accounts are the node keys of `data_dir` (made here,
    under PASSPHRASE), funded; missing ganache fails under BAL_REQUIRE_INTEGRATION."""
    if not GANACHE.exists():
        if os.environ.get("BAL_REQUIRE_INTEGRATION"):
            pytest.fail("node_modules/.bin/ganache is required; run `npm ci`")
        pytest.skip("ganache not installed (npm ci); BAL_REQUIRE_INTEGRATION=1 makes this fail")
    keys = NodeKeys(data_dir / "keys", Wallets(PASSPHRASE))
    node = Ganache(
        tmp_path / "ganache-db",
        free_port(),
        [keys["chain-admin"].private_key, keys["anchorer"].private_key],
    )
    node.start()
    return node


@pytest.fixture
def ganache_setup(tmp_path: Path) -> Iterator[tuple[Ganache, Path]]:
    data_dir = tmp_path / "data"
    node = funded_ganache(tmp_path, data_dir)
    yield node, data_dir
    node.stop()


def anchored_sizes(node: NodeThread) -> list[int]:
    return [a["size"] for a in node.get("/v1/anchors", log="bal-main")["items"]]  # type: ignore[union-attr,index]


def test_deploy_anchor_survive_outage_and_node_restart(
    ganache_setup: tuple[Ganache, Path], tmp_path: Path
) -> None:
    ganache, data_dir = ganache_setup
    env = {"BAL_DATA_DIR": str(data_dir), "BAL_KEY_PASSPHRASE": PASSPHRASE, **store_env(data_dir)}
    deployed = runner.invoke(app, ["chain", "deploy", "--rpc", ganache.url], env=env)
    assert deployed.exit_code == 0, deployed.output
    assert "CertificationRegistry" in deployed.output
    again = runner.invoke(app, ["chain", "deploy", "--rpc", ganache.url], env=env)
    assert again.exit_code == 1 and "already deployed" in again.output

    settings = {
        "chain": "rpc",
        "chain_url": ganache.url,
        "anchor_interval": 0.3,
        "key_passphrase": PASSPHRASE,
    }
    with NodeThread(data_dir, **settings) as node:  # type: ignore[arg-type]
        node.add_user("producer1", "secret-pass-1")
        publish(node, SAMPLE_XML)
        wait_for(lambda: anchored_sizes(node) == [2], timeout=30, what="first anchor")
        proof = node.http.get("/v1/readings/1/proof", headers=node.token()).json()
        proof_path = tmp_path / "proof.json"
        proof_path.write_text(httpx.Response(200, json=proof).text)
        checked = runner.invoke(app, ["verify", str(proof_path), "--rpc", ganache.url])
        assert checked.exit_code == 0, checked.output

        # the chain goes away: ingest and checkpoints go on, anchoring waits
        ganache.stop()
        publish(node, SAMPLE_PMU)
        wait_for(
            lambda: node.node.store.latest_checkpoint("bal-main").checkpoint.size == 4,  # type: ignore[union-attr]
            what="a checkpoint while the chain is down",
        )
        time.sleep(1.0)
        assert anchored_sizes(node) == [2]
        assert node.node.anchorer is not None and node.node.anchorer.failures > 0

        # the node restarts on its database: old anchors are there, the newest goes out
        ganache.start()
        wait_for(lambda: anchored_sizes(node) == [2, 4], timeout=90, what="anchor after outage")

    # the proof handed out before the outage still verifies against the restarted node
    checked = runner.invoke(app, ["verify", str(proof_path), "--rpc", ganache.url])
    assert checked.exit_code == 0, checked.output
    audited = runner.invoke(app, ["audit", "--rpc", ganache.url], env=env)
    assert audited.exit_code == 0, audited.output
    assert "2 anchors checked" in audited.output
