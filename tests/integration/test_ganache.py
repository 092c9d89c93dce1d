"""The JSON-RPC chain adapter against a real Ethereum node from npm (ganache), with
`bal chain deploy`, anchoring while the node goes down and comes back, and a restart of
the node on its persistent database."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from platone_bal.cli import app
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.integration.ganache import PASSPHRASE, Ganache
from tests.integration.nodes import NodeThread, wait_for
from tests.integration.nodes import publish_as_producer1 as publish
from tests.integration.stores import store_env

pytestmark = pytest.mark.integration
runner = CliRunner()


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
