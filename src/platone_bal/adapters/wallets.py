"""Custodial Ethereum accounts of users, kept as encrypted keystores (Web3 Secret Storage).

Each user gets a wallet address at creation: the `owner` of a producer's readings and,
later, the account that signs the user's on-chain decisions. The keystore passphrase is
a 256-bit random secret of the node, so the KDF cost can stay small without weakening
the encryption (a brute force would have to guess the passphrase, not a password).
"""

from __future__ import annotations

import json

from eth_account import Account

_SCRYPT_N = 2**12


class Wallets:
    """Creates and opens custodial accounts with the node's keystore passphrase."""

    def __init__(self, passphrase: str) -> None:
        self._passphrase = passphrase

    def create(self) -> tuple[str, str]:
        """A new account: (EIP-55 address, keystore JSON)."""
        account = Account.create()
        keystore = Account.encrypt(
            account.key, self._passphrase, kdf="scrypt", iterations=_SCRYPT_N
        )
        return str(account.address), json.dumps(keystore)

    def private_key(self, keystore: str) -> bytes:
        return bytes(Account.decrypt(json.loads(keystore), self._passphrase))
