"""Two nodes on one store sign with the same keys and honour each other's tokens and
sessions, though they share no directory (ARCHITECTURE §8, several nodes)."""

from __future__ import annotations

from pathlib import Path

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.app import Node
from platone_bal.config import Settings
from platone_bal.domain.users import Scope

PASSPHRASE = "a shared passphrase of the BAL's nodes"


def node(tmp_path: Path, name: str) -> Node:
    settings = Settings(data_dir=tmp_path / name, key_passphrase=PASSPHRASE)
    return Node(settings, store=SqliteStore(tmp_path / "shared.sqlite3"))


def test_nodes_on_one_store_share_keys_tokens_and_nothing_on_disk(tmp_path: Path) -> None:
    first, second = node(tmp_path, "a"), node(tmp_path, "b")
    try:
        for name in ("log-signer", "anchorer", "chain-admin"):
            assert first.keys[name] == second.keys[name]  # type: ignore[index]
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
