"""Rows as the store holds them, turned into values only when they have the right
shape: the store hands them over unparsed, so a row an operator changed to the wrong
type (a leaf stored as TEXT, a root that is not 32 bytes) is a finding that names it,
never a crash."""

from __future__ import annotations

from platone_bal.domain.checkpoint import Anchor, Checkpoint, SignedCheckpoint
from platone_bal.ports import Store
from platone_bal.services.audit.report import BadRow, Finding

PAGE = 5000
"""Rows read per query: the audit never holds a whole log."""


def stored_anchors(store: Store, log: str) -> list[Anchor]:
    found: list[Anchor] = []
    after = 0
    while page := store.raw_anchors(log, after, PAGE):
        for row_id, size, root, chain_id, contract, tx, block, time in page:
            try:
                found.append(
                    Anchor(
                        log,
                        as_int(size, "size"),
                        as_hash(root, "root"),
                        as_int(chain_id, "chain id"),
                        as_text(contract, "contract"),
                        as_text(tx, "tx"),
                        as_int(block, "block"),
                        as_text(time, "time"),
                    )
                )
            except BadRow as bad:
                raise Finding(f"anchor row {row_id}: {bad}") from None
        after = page[-1][0]
    return found


def checkpoint_of(log: str, row: tuple[object, object, object, object, object]) -> SignedCheckpoint:
    size, root, time, signature, signer = row
    try:
        checkpoint = Checkpoint(
            log, as_int(size, "size"), as_hash(root, "root"), as_text(time, "time")
        )
        return SignedCheckpoint(
            checkpoint, as_text(signature, "signature"), as_text(signer, "signer")
        )
    except BadRow as bad:
        raise Finding(f"checkpoint row of size {size!r}: {bad}") from None


def as_int(value: object, what: str) -> int:
    if not isinstance(value, int):
        raise BadRow(f"{what} is stored as {sql_type(value)} {value!r}, not an integer")
    return value


def as_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise BadRow(f"{what} is stored as {sql_type(value)} {value!r}, not text")
    return value


def as_hash(value: object, what: str) -> bytes:
    if not (isinstance(value, bytes) and len(value) == 32):
        raise BadRow(f"{what} is stored as {shown(value)}, not 32 bytes")
    return value


def shown(value: object) -> str:
    """A stored value for a finding: hashes in hex, anything else with its SQL type."""
    if value is None:
        return "missing"
    if isinstance(value, bytes):
        return f"0x{value.hex()}"
    return f"{sql_type(value)} {value!r}"


def sql_type(value: object) -> str:
    kinds = {bytes: "BLOB", str: "TEXT", int: "INTEGER", float: "REAL", type(None): "NULL"}
    return kinds.get(type(value), type(value).__name__)
