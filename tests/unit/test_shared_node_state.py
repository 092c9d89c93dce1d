"""Two nodes on one store sign with the same keys and honour each other's tokens and
sessions, though they share no directory (ARCHITECTURE §8, several nodes)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.app import Node
from platone_bal.config import Settings
from platone_bal.domain.users import Scope

PASSPHRASE = "a shared passphrase of the BAL's nodes"


def node(tmp_path: Path, name: str) -> Node:
    settings = Settings(data_dir=tmp_path / name, key_passphrase=SecretStr(PASSPHRASE))
    return Node(settings, store=SqliteStore(tmp_path / "shared.sqlite3"))


def test_nodes_on_one_store_share_keys_tokens_and_nothing_on_disk(tmp_path: Path) -> None:
    first, second = node(tmp_path, "a"), node(tmp_path, "b")
    try:
        for name in ("log-signer", "anchorer", "chain-admin"):
            assert first.keys[name] == second.keys[name]
        token = first.tokens.issue("alice", frozenset({Scope.READ}))
        claims = second.tokens.claims(token)
        assert claims is not None and claims.subject == "alice"
        assert first.keys.secret("session-key") == second.keys.secret("session-key")
        for data_dir in (tmp_path / "a", tmp_path / "b"):
            assert not (data_dir / "keys").exists()
            assert not (data_dir / "secrets" / "token-key").exists()
    finally:
        first.store.close()
        second.store.close()


def test_bal_chain_accounts_names_the_accounts_to_fund(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from platone_bal.adapters.node_keys import NodeKeys
    from platone_bal.adapters.wallets import Wallets
    from platone_bal.cli import app

    env = {"BAL_DATA_DIR": str(tmp_path / "a"), "BAL_KEY_PASSPHRASE": PASSPHRASE}
    shown = CliRunner().invoke(app, ["chain", "accounts"], env=env)
    assert shown.exit_code == 0, shown.output
    listed = dict(line.split() for line in shown.output.splitlines() if line.strip())
    store = SqliteStore(tmp_path / "a" / "scd.sqlite3")  # the data directory's store
    try:
        keys = NodeKeys(store, Wallets(PASSPHRASE))
        assert listed == {
            name: keys[name].address for name in ("chain-admin", "anchorer", "log-signer")
        }
    finally:
        store.close()
