"""The node's own Ethereum keys, each in an encrypted keystore file in the data directory.

- `log-signer` signs checkpoints (EIP-191); verifiers pin its address.
- `anchorer` sends `CertificationRegistry.anchor` transactions.
- `chain-admin` deploys the contracts and grants roles (the DSO's account).

Keeping them apart means a leaked anchorer key cannot forge checkpoints, and the admin
key is used only for rare, deliberate changes. Keystores use the node's keystore
passphrase (a setting, or a generated 0600 secret file), so they survive restarts and
are useless without it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from eth_account import Account

from platone_bal.adapters.wallets import Wallets

KeyName = Literal["log-signer", "anchorer", "chain-admin"]


@dataclass(frozen=True, slots=True)
class NodeKey:
    name: KeyName
    address: str
    private_key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"NodeKey({self.name!r}, {self.address})"


class NodeKeys:
    """Loads the node's keys from `keys_dir`, creating any that are missing."""

    def __init__(self, keys_dir: Path, wallets: Wallets) -> None:
        self._dir = keys_dir
        self._wallets = wallets
        self._cache: dict[KeyName, NodeKey] = {}

    def __getitem__(self, name: KeyName) -> NodeKey:
        if name not in self._cache:
            self._cache[name] = self._load_or_create(name)
        return self._cache[name]

    def _load_or_create(self, name: KeyName) -> NodeKey:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._dir / f"{name}.json"
        if not path.exists():
            _, keystore = self._wallets.create()
            temporary = path.with_suffix(".tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(keystore)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)  # a crash leaves either no key or a whole one
        keystore_text = path.read_text()
        private_key = self._wallets.private_key(keystore_text)
        address = str(Account.from_key(private_key).address)
        stated = json.loads(keystore_text).get("address")
        if stated and stated.lower() != address[2:].lower():
            raise ValueError(f"keystore {path} does not hold the key of its stated address")
        return NodeKey(name, address, private_key)
