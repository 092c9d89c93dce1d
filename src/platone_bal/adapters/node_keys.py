"""The node's Ethereum keys and shared secrets, each an encrypted keystore in the store.

- `log-signer` signs checkpoints (EIP-191); verifiers pin its address.
- `anchorer` sends `CertificationRegistry.anchor` transactions.
- `chain-admin` deploys the contracts and grants roles (the DSO's account).
- `token-key` signs bearer tokens, `session-key` the dashboard's session cookies.

Keeping the keys apart means a leaked anchorer key cannot forge checkpoints, and the
admin key is used only for rare, deliberate changes. All of them live in the store
(`node_state`, as Web3 Secret Storage keystores under the keystore passphrase), not in
the data directory: every node of one BAL signs with the same keys and honours the same
tokens, and a node needs no volume (ARCHITECTURE §8). The first node to need one makes
it; a node that started before keys moved to the store brings its files (`keys/*.json`,
`secrets/token-key`, `secrets/session-key`) along at its next start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from eth_account import Account

from platone_bal.adapters.wallets import Wallets
from platone_bal.ports import NodeStateStore

KeyName = Literal["log-signer", "anchorer", "chain-admin"]
SecretName = Literal["token-key", "session-key"]


class PassphraseMismatch(ValueError):
    """A keystore in the store does not open with this node's passphrase."""


@dataclass(frozen=True, slots=True)
class NodeKey:
    name: KeyName
    address: str
    private_key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"NodeKey({self.name!r}, {self.address})"


class NodeKeys:
    """Loads the node's keys and secrets from the store, making any that are missing."""

    def __init__(
        self, store: NodeStateStore, wallets: Wallets, legacy_dir: Path | None = None
    ) -> None:
        """`legacy_dir`: the data directory whose files an older node kept them in."""
        self._store = store
        self._wallets = wallets
        self._legacy = legacy_dir
        self._keys: dict[KeyName, NodeKey] = {}
        self._secrets: dict[SecretName, str] = {}

    def __getitem__(self, name: KeyName) -> NodeKey:
        if name not in self._keys:
            private_key = self._private_key(name, self._legacy_key(name))
            address = str(Account.from_key(private_key).address)
            self._keys[name] = NodeKey(name, address, private_key)
        return self._keys[name]

    def secret(self, name: SecretName) -> str:
        """A 256-bit secret shared by the nodes, in hex."""
        if name not in self._secrets:
            self._secrets[name] = self._private_key(name, self._legacy_secret(name)).hex()
        return self._secrets[name]

    def _private_key(self, name: str, legacy: str | None) -> bytes:
        stored_name = f"keystore/{name}"
        keystore = self._store.node_value(stored_name)
        if keystore is None:
            keystore = self._store.put_node_value(
                stored_name, legacy if legacy is not None else self._wallets.create()[1]
            )
        try:
            private_key = self._wallets.private_key(keystore)
        except ValueError as error:
            raise PassphraseMismatch(
                f"the stored keystore {name!r} does not open with this node's passphrase:"
                " every node of one BAL needs the same BAL_KEY_PASSPHRASE"
            ) from error
        stated = json.loads(keystore).get("address")
        if stated and stated.lower() != str(Account.from_key(private_key).address)[2:].lower():
            raise ValueError(f"keystore {name!r} does not hold the key of its stated address")
        return private_key

    def _legacy_key(self, name: KeyName) -> str | None:
        path = self._legacy / "keys" / f"{name}.json" if self._legacy else None
        return path.read_text() if path is not None and path.exists() else None

    def _legacy_secret(self, name: SecretName) -> str | None:
        """An older node's secret file, as a keystore of the same 32 bytes (a hex
        secret is a valid private key but with negligible chance)."""
        path = self._legacy / "secrets" / name if self._legacy else None
        if path is None or not path.exists():
            return None
        try:
            value = bytes.fromhex(path.read_text().strip())
            return self._wallets.encrypt(value)
        except ValueError:
            return None
