"""Custodial Ethereum accounts of users, kept as encrypted keystores (Web3 Secret Storage).

Each user gets a wallet address at creation: the `owner` of a producer's readings and,
later, the account that signs the user's on-chain decisions. The keystore passphrase is
a 256-bit random secret of the node, so the KDF cost can stay small without weakening
the encryption (a brute force would have to guess the passphrase, not a password).
"""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

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

    def encrypt(self, private_key: bytes) -> str:
        """The keystore JSON of an existing key (ValueError if not a valid key)."""
        keystore = Account.encrypt(
            private_key, self._passphrase, kdf="scrypt", iterations=_SCRYPT_N
        )
        return json.dumps(keystore)

    def private_key(self, keystore: str) -> bytes:
        return bytes(Account.decrypt(json.loads(keystore), self._passphrase))

    def sign_typed_data(self, keystore: str, typed: dict[str, Any]) -> tuple[str, str]:
        """(0x signature, EIP-55 signer) of EIP-712 `typed` data by the keystore's account."""
        key = self.private_key(keystore)
        signed = Account.sign_message(encode_typed_data(full_message=typed), key)
        return "0x" + bytes(signed.signature).hex(), str(Account.from_key(key).address)
