"""Checkpoints of ARCHITECTURE §5: a log's size and root, signed with EIP-191.

A checkpoint is what the log operator commits to: "log L had N leaves with root R at
time T". Its bytes are RFC 8785 canonical JSON so any verifier can rebuild them, and the
signature is Ethereum's `personal_sign` (EIP-191 version 0x45) so that the same key
material and tooling work on and off chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rfc8785
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint document is malformed or its signature does not hold."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Unsigned checkpoint: the log's `size` leaves hash to `root` (32 bytes)."""

    log: str
    size: int
    root: bytes
    time: str

    def body(self) -> dict[str, Any]:
        return {
            "v": CHECKPOINT_VERSION,
            "log": self.log,
            "size": self.size,
            "root": "0x" + self.root.hex(),
            "time": self.time,
        }

    def to_bytes(self) -> bytes:
        """The signed bytes: RFC 8785 canonical JSON of the body."""
        return bytes(rfc8785.dumps(self.body()))


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint with its EIP-191 signature and the EIP-55 address that signed it."""

    checkpoint: Checkpoint
    signature: str
    signer: str

    def to_json(self) -> dict[str, Any]:
        return {**self.checkpoint.body(), "signature": self.signature, "signer": self.signer}

    @classmethod
    def from_json(cls, document: Any) -> SignedCheckpoint:
        """Parse the proof bundle's `checkpoint` member, refusing anything off-contract."""
        if not isinstance(document, dict):
            raise CheckpointError("checkpoint is not an object")
        expected = {"v", "log", "size", "root", "time", "signature", "signer"}
        if set(document) != expected:
            raise CheckpointError(f"checkpoint keys must be exactly {sorted(expected)}")
        if document["v"] != CHECKPOINT_VERSION:
            raise CheckpointError(f"checkpoint version {document['v']!r} is not supported")
        size = document["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise CheckpointError("checkpoint size must be a non-negative integer")
        for key in ("log", "time", "signature", "signer", "root"):
            if not isinstance(document[key], str):
                raise CheckpointError(f"checkpoint {key} must be a string")
        return cls(
            Checkpoint(document["log"], size, parse_hash(document["root"]), document["time"]),
            document["signature"],
            document["signer"],
        )


def parse_hash(text: str) -> bytes:
    """A `0x` + 64 hex digit hash as bytes."""
    if not (isinstance(text, str) and text.startswith("0x") and len(text) == 66):
        raise CheckpointError(f"{text!r} is not a 0x-prefixed 32-byte hex hash")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise CheckpointError(f"{text!r} is not hex") from None


def sign_checkpoint(checkpoint: Checkpoint, private_key: bytes) -> SignedCheckpoint:
    signed = Account.sign_message(encode_defunct(primitive=checkpoint.to_bytes()), private_key)
    signer = Account.from_key(private_key).address
    return SignedCheckpoint(checkpoint, "0x" + bytes(signed.signature).hex(), str(signer))


def recover_signer(signed: SignedCheckpoint) -> str:
    """The EIP-55 address whose key made the signature over the checkpoint's bytes."""
    try:
        address = Account.recover_message(
            encode_defunct(primitive=signed.checkpoint.to_bytes()), signature=signed.signature
        )
    except Exception as error:  # eth_keys raises several types for malformed signatures
        raise CheckpointError(f"signature cannot be recovered: {error}") from None
    return str(to_checksum_address(address))


def verify_signature(signed: SignedCheckpoint) -> None:
    """Raise CheckpointError unless `signer` made `signature` over the checkpoint."""
    recovered = recover_signer(signed)
    if recovered.lower() != signed.signer.lower():
        raise CheckpointError(f"signature is by {recovered}, not by the stated signer")


def log_key(log: str) -> bytes:
    """The on-chain id of a log: keccak256 of its UTF-8 name (ARCHITECTURE §5)."""
    return keccak(log.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class Anchor:
    """A checkpoint recorded on chain by `CertificationRegistry.anchor` (ARCHITECTURE §5)."""

    log: str
    size: int
    root: bytes
    chain_id: int
    contract: str
    tx: str
    block: int
    time: str
    """Timestamp of the block that holds the anchor, UTC RFC 3339."""

    def bundle_json(self) -> dict[str, Any]:
        """The `anchor` member of a proof bundle (§6)."""
        return {
            "chain_id": self.chain_id,
            "contract": self.contract,
            "tx": self.tx,
            "block": self.block,
        }
