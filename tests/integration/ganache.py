"""A real Ethereum JSON-RPC node from npm (ganache) for integration tests, funded with a
node's chain keys; `ganache_setup` is the fixture (tests/integration/conftest.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from platone_bal.adapters.wallets import Wallets
from tests.conftest import free_port
from tests.integration.nodes import wait_for

ROOT = Path(__file__).resolve().parents[2]
GANACHE = ROOT / "node_modules" / ".bin" / "ganache"
PASSPHRASE = "test-keystore-passphrase"


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


def node_key_files(data_dir: Path) -> dict[str, bytes]:
    """The chain keys of the node of `data_dir` by name, as keystore files under
    PASSPHRASE in `data_dir/keys` (made here when missing): a node from before the keys
    moved to the store kept them so, and brings them into its store at its start."""
    wallets = Wallets(PASSPHRASE)
    keys_dir = data_dir / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    found = {}
    for name in ("chain-admin", "anchorer"):
        path = keys_dir / f"{name}.json"
        if not path.exists():
            path.write_text(wallets.create()[1])
        found[name] = wallets.private_key(path.read_text())
    return found


def funded_ganache(tmp_path: Path, data_dir: Path) -> Ganache:
    """A started ganache whose accounts are the node keys of `data_dir` (made here,
    under PASSPHRASE), funded; missing ganache fails under BAL_REQUIRE_INTEGRATION."""
    if not GANACHE.exists():
        if os.environ.get("BAL_REQUIRE_INTEGRATION"):
            pytest.fail("node_modules/.bin/ganache is required; run `npm ci`")
        pytest.skip("ganache not installed (npm ci); BAL_REQUIRE_INTEGRATION=1 makes this fail")
    keys = node_key_files(data_dir)
    node = Ganache(tmp_path / "ganache-db", free_port(), [keys["chain-admin"], keys["anchorer"]])
    node.start()
    return node


def ganache_setup(tmp_path: Path) -> Iterator[tuple[Ganache, Path]]:
    """A funded ganache and the data directory whose node keys it funds; stopped after."""
    data_dir = tmp_path / "data"
    node = funded_ganache(tmp_path, data_dir)
    yield node, data_dir
    node.stop()
