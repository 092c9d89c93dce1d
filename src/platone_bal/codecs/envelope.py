"""The signed Light Node envelope of ARCHITECTURE §8, read but not yet trusted.

`{"v": 1, "device": ID, "payload": TEXT, "signature": "0x" + 65 bytes hex}`: the
payload is the CIM XML or PMU JSON text exactly as the Light Node produced it, and the
signature is EIP-191 `personal_sign` over its UTF-8 bytes. This module only checks the
envelope's shape; who signed it, and whether that key may speak for the device, is
decided against the DSO's registry (`services.device_keys`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from platone_bal.codecs.errors import DecodeError
from platone_bal.domain.devices import valid_device_id

FORMAT = "signed-envelope"
VERSION = "1"
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_KEYS = {"v", "device", "payload", "signature"}


@dataclass(frozen=True, slots=True)
class Envelope:
    """A Light Node's signed packet: which device, what it signed, and the signature."""

    device: str
    payload: bytes
    """The UTF-8 bytes of the envelope's payload text: what was signed."""
    signature: bytes
    """65 bytes (r, s, v)."""


def read_envelope(document: dict[str, Any]) -> Envelope:
    """The envelope of a parsed JSON object that has `payload` and `signature`."""
    extra = sorted(set(document) - _KEYS)
    if extra:
        raise DecodeError(f"signed envelope has unknown keys: {', '.join(extra)[:120]}")
    version = document.get("v")
    if version != VERSION or type(version) is str:  # a JSON number 1, read as its text
        raise DecodeError(f"signed envelope version must be the number {VERSION}")
    device = document.get("device")
    if type(device) is not str or not valid_device_id(device):
        raise DecodeError("signed envelope has no valid 'device' id")
    payload = document.get("payload")
    if type(payload) is not str or not payload:
        raise DecodeError("signed envelope's 'payload' must be the signed text")
    signature = document.get("signature")
    if type(signature) is not str or not _SIGNATURE.fullmatch(signature):
        raise DecodeError("signed envelope's 'signature' must be 0x and 65 bytes in hex")
    return Envelope(device, payload.encode("utf-8"), bytes.fromhex(signature[2:]))
