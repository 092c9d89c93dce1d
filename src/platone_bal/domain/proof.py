"""The proof bundle of ARCHITECTURE §6, and its verification without the BAL server.

A verifier needs nothing but the bundle (and, for the anchor check, any Ethereum
JSON-RPC endpoint): (a) the leaf hashes to what the inclusion path starts from, (b)
the path leads to the checkpoint's root for (index, size), (c) the checkpoint is
signed by the stated signer, (d) the registry contract holds that root for that size.
Each check reports its own verdict so a person can see which one failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import rfc8785

from platone_bal.domain.checkpoint import (
    Anchor,
    CheckpointError,
    SignedCheckpoint,
    parse_hash,
    verify_signature,
)
from platone_bal.domain.merkle import SHA3_256, verify_inclusion
from platone_bal.domain.setpoints import LEAF_KEYS as SETPOINT_LEAF_KEYS
from platone_bal.domain.setpoints import SETPOINT_LOG

PROOF_FORMAT = "platone-bal/proof@1"
LEAF_KEYS = {
    "v",
    "log",
    "producer",
    "owner",
    "device",
    "time",
    "measurand",
    "value",
    "unit",
    "attrs",
    "source",
    "salt",
}


def build_bundle(
    leaf_bytes: bytes,
    index: int,
    checkpoint: SignedCheckpoint,
    inclusion: list[bytes],
    anchor: Anchor | None,
) -> dict[str, Any]:
    return {
        "format": PROOF_FORMAT,
        "hash": "sha3-256",
        "leaf": json.loads(leaf_bytes),
        "index": index,
        "checkpoint": checkpoint.to_json(),
        "inclusion": ["0x" + node.hex() for node in inclusion],
        "anchor": anchor.bundle_json() if anchor is not None else None,
    }


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool | None
    """True passed, False failed, None not run (e.g. no RPC endpoint given)."""
    detail: str


AnchorLookup = Callable[[dict[str, Any], SignedCheckpoint], str | None]
"""(bundle's anchor member, checkpoint) -> None when the chain holds the root, else why not."""

SignerLookup = Callable[[dict[str, Any], dict[str, Any]], str | None]
"""(leaf, bundle's anchor member) -> None when DeviceRegistry held the leaf's
`attrs.signer` as the current key of its device at the anchor's block, else why not."""


def verify_bundle(
    bundle: Any,
    anchor_lookup: AnchorLookup | None = None,
    signer_lookup: SignerLookup | None = None,
) -> list[Check]:
    """Every check of §6 in order; the anchor is only looked up for a sound proof. A
    Light Node's reading (its leaf has `attrs.signer`) adds the signer, and with a
    `signer_lookup` whether the registry held that key for the device when anchored."""
    checks: list[Check] = []
    try:
        leaf, index, signed, path = _parse(bundle)
    except (CheckpointError, ValueError, KeyError, TypeError) as error:
        return [Check("format", False, str(error))]
    checks.append(Check("format", True, PROOF_FORMAT))

    leaf_hash = SHA3_256.hash_leaf(bytes(rfc8785.dumps(leaf)))
    size, root = signed.checkpoint.size, signed.checkpoint.root
    if verify_inclusion(SHA3_256, index, size, leaf_hash, path, root):
        checks.append(Check("leaf", True, f"leaf hash 0x{leaf_hash.hex()}"))
        checks.append(Check("inclusion", True, f"leaf {index} is in the tree of size {size}"))
    else:
        # A changed leaf and a changed path look the same from here; the leaf is the
        # data people care about, so the verdict names it first.
        checks.append(
            Check(
                "leaf",
                False,
                f"leaf hash 0x{leaf_hash.hex()} is not the leaf certified at index {index}",
            )
        )
        checks.append(
            Check("inclusion", False, f"path does not lead to root 0x{root.hex()} (size {size})")
        )
    try:
        verify_signature(signed)
        checks.append(Check("signature", True, f"checkpoint signed by {signed.signer}"))
    except CheckpointError as error:
        checks.append(Check("signature", False, str(error)))
        return checks
    if not all(check.ok for check in checks):
        return checks
    anchor = bundle.get("anchor")
    if anchor is None:
        checks.append(Check("anchor", None, "not anchored yet; ask again after the interval"))
    elif anchor_lookup is None:
        checks.append(Check("anchor", None, "no RPC endpoint given; anchor not checked"))
    else:
        problem = anchor_lookup(anchor, signed)
        if problem is None:
            checks.append(
                Check("anchor", True, f"contract {anchor['contract']} holds the root for {size}")
            )
        else:
            checks.append(Check("anchor", False, problem))
    attrs = leaf.get("attrs")
    signer = attrs.get("signer") if isinstance(attrs, dict) else None
    if signer is not None:
        checks.append(_signer_check(leaf, signer, anchor, signer_lookup))
    return checks


def _signer_check(
    leaf: dict[str, Any], signer: object, anchor: Any, lookup: SignerLookup | None
) -> Check:
    device = f"{leaf['producer']}/{leaf['device']}"
    if lookup is None:
        return Check("signer", None, f"signed by {signer} at device {device}; registry not checked")
    if anchor is None:
        return Check("signer", None, f"signed by {signer}; not anchored yet, registry not checked")
    problem = lookup(leaf, anchor)
    if problem is not None:
        return Check("signer", False, problem)
    return Check(
        "signer",
        True,
        f"signed by {signer}, the key DeviceRegistry held for {device} at block {anchor['block']}",
    )


def _parse(bundle: Any) -> tuple[dict[str, Any], int, SignedCheckpoint, list[bytes]]:
    if not isinstance(bundle, dict):
        raise ValueError("proof is not a JSON object")
    if bundle.get("format") != PROOF_FORMAT or bundle.get("hash") != "sha3-256":
        raise ValueError(f"not a {PROOF_FORMAT} bundle with hash sha3-256")
    leaf = bundle["leaf"]
    if not isinstance(leaf, dict):
        raise ValueError("leaf must be a JSON object")
    expected: Collection[str] | None = LEAF_KEYS
    if leaf.get("log") == SETPOINT_LOG:  # a set point or an answer (ARCHITECTURE §8)
        expected = SETPOINT_LEAF_KEYS.get(str(leaf.get("kind")))
    if expected is None or set(leaf) != expected:
        raise ValueError(f"leaf must have exactly the keys {sorted(expected or LEAF_KEYS)}")
    index = bundle["index"]
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ValueError("index must be a non-negative integer")
    signed = SignedCheckpoint.from_json(bundle["checkpoint"])
    if leaf["log"] != signed.checkpoint.log:
        raise ValueError("leaf and checkpoint name different logs")
    path = bundle["inclusion"]
    if not isinstance(path, list):
        raise ValueError("inclusion must be a list of hashes")
    anchor = bundle.get("anchor")
    if anchor is not None and (
        not isinstance(anchor, dict) or set(anchor) != {"chain_id", "contract", "tx", "block"}
    ):
        raise ValueError("anchor must be null or {chain_id, contract, tx, block}")
    return leaf, index, signed, [parse_hash(node) for node in path]
