"""Light Nodes: who signed a packet (EIP-191), and whether the DSO's registry lets that
key speak for the device (ARCHITECTURE §8).

Recovery uses coincurve (libsecp256k1) directly: about 6,000 signatures/s here against
3,600 through eth_account's general path. Only canonical signatures are accepted (v 27
or 28, s in the lower half of the curve order): otherwise anyone who saw an envelope
could make a second valid one of the same payload (ECDSA malleability), with another
digest, and have its readings stored twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The secp256k1 group order n."""


class BadSignature(ValueError):
    """The signature is not a canonical EIP-191 signature of the payload by anyone."""


def personal_message_hash(payload: bytes) -> bytes:
    """Keccak-256 of the EIP-191 (version 0x45, `personal_sign`) message of `payload`."""
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(payload)).encode() + payload)


def recover_signer(payload: bytes, signature: bytes) -> str:
    """The EIP-55 address whose key made `signature` (65 bytes r, s, v) over `payload`."""
    if len(signature) != 65:
        raise BadSignature(f"signature of {len(signature)} bytes, not 65")
    r, s, v = (
        int.from_bytes(signature[:32], "big"),
        int.from_bytes(signature[32:64], "big"),
        signature[64],
    )
    if v not in (27, 28):
        raise BadSignature(f"signature v is {v}, not 27 or 28")
    if not (0 < r < _ORDER and 0 < s <= _ORDER // 2):
        raise BadSignature("signature is not canonical (r or s out of range, or s high)")
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), personal_message_hash(payload), hasher=None
        )
    except Exception:  # coincurve raises plain Exceptions for unrecoverable points
        raise BadSignature("no key recovers from this signature") from None
    return str(to_checksum_address(keccak(public.format(compressed=False)[1:])[-20:]))


@dataclass(frozen=True, slots=True)
class KeyState:
    """A device's entry in DeviceRegistry as its events left it."""

    key: str
    """EIP-55 address of the device's key (the latest registered)."""
    owner: str
    revoked: bool
    tx: str
    """The transaction of the latest change (registration or revocation)."""
    block: int


def signer_refusal(device: str, state: KeyState | None, signer: str) -> str | None:
    """Why an envelope of `device` signed by `signer` is refused, or None."""
    if state is None:
        return f"device {device!r} has no key in DeviceRegistry"
    if state.revoked:
        return f"the key {state.key} of device {device!r} was revoked (tx {state.tx})"
    if signer != state.key:
        return f"signed by {signer}, but device {device!r} is registered with key {state.key}"
    return None


@dataclass(frozen=True, slots=True)
class KeyChange:
    """One DeviceRegistry event: a key registered (`key` set) or revoked (`key` None)."""

    device_key: bytes
    """The registry's device id, keccak256 of `NAME/DEVICE` (`devices.device_key`)."""
    key: str | None
    owner: str | None
    tx: str
    block: int


def changed(state: KeyState | None, change: KeyChange) -> KeyState | None:
    """The entry after `change`: a registration replaces it, a revocation marks it."""
    if change.key is not None and change.owner is not None:
        return KeyState(change.key, change.owner, False, change.tx, change.block)
    if state is None:
        return None  # the contract never emits this; nothing to revoke
    return KeyState(state.key, state.owner, True, change.tx, change.block)
