"""Anchors, stored and on chain, against the rebuilt roots: each stored anchor's root
is the rebuilt root at its size and its transaction really anchored it; every anchor
the chain holds for the log is in the store, and the store is not behind the chain (a
rollback of readings with their nodes, checkpoints and anchors shows here)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from platone_bal.domain.checkpoint import Anchor
from platone_bal.ports import AnchorChain, ChainError, Store
from platone_bal.services.audit.report import Finding
from platone_bal.services.audit.rows import shown, stored_anchors

_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class ChainView:
    """What the chain holds for the log."""

    latest_size: int
    roots: dict[int, bytes]
    """Root of every anchored size (the `Anchored` events and the contract's latest)."""
    anchors: list[Anchor]
    """The `Anchored` events, as the anchorer records them."""


def read_chain(chain: AnchorChain, log: str) -> ChainView:
    latest_size, latest_root, _ = chain.latest(log)
    events = chain.anchored_events(log)
    roots = {anchor.size: anchor.root for anchor in events}
    if latest_size:
        roots[latest_size] = latest_root
    return ChainView(latest_size, roots, events)


def check_anchor_roots(stored: list[Anchor], roots: Mapping[int, bytes], size: int) -> None:
    """Each stored anchor's root is the rebuilt root at its size."""
    for anchor in stored:
        if anchor.size > size:
            raise Finding(
                f"anchor of size {anchor.size} (tx {anchor.tx}) lies beyond the log's "
                f"{size} leaves",
                size,
            )
        rebuilt = roots.get(anchor.size)
        if rebuilt is None:
            raise Finding(f"an anchor of size {anchor.size} (never anchored)")
        if rebuilt != anchor.root:
            raise Finding(
                f"anchor of size {anchor.size} (tx {anchor.tx}) records root "
                f"0x{anchor.root.hex()}, the stored leaves give 0x{rebuilt.hex()}",
                anchor.size - 1,
            )


def compare_with_chain(view: ChainView, roots: Mapping[int, bytes], size: int) -> None:
    """The store is not behind the chain, and holds the leaves of every anchored root."""
    if view.latest_size > size:
        raise Finding(
            f"the chain's latest anchor of this log is of size {view.latest_size}, the store "
            f"holds only {size} leaves: the store is behind the chain (rolled back?)",
            size,
        )
    for anchored, root in sorted(view.roots.items()):
        rebuilt = roots.get(anchored)
        if rebuilt != root:
            raise Finding(
                f"the chain anchored size {anchored} with root 0x{root.hex()}, "
                f"the stored leaves give {shown(rebuilt)}",
                anchored - 1,
            )


def check_on_chain(chain: AnchorChain, anchor: Anchor) -> None:
    """The stored anchor is its transaction's: mined in the stored block, and it made
    the registry emit `Anchored` for this log, size and root."""
    where = f"anchor of size {anchor.size}"
    if anchor.chain_id != chain.chain_id or anchor.contract.lower() != (
        chain.registry_address.lower()
    ):
        raise Finding(
            f"{where} names contract {anchor.contract} on chain {anchor.chain_id}; the log "
            f"is anchored in {chain.registry_address} on chain {chain.chain_id}"
        )
    if not _TX_HASH.fullmatch(anchor.tx):
        raise Finding(f"{where}: {anchor.tx!r} is not a transaction hash")
    try:
        made = chain.transaction_anchors(anchor.log, anchor.tx)
    except ChainError as error:
        raise Finding(f"cannot read anchors on chain: {error}") from None
    if made is None:
        raise Finding(f"{where}: the chain has no transaction {anchor.tx}")
    same = [a for a in made if (a.size, a.root) == (anchor.size, anchor.root)]
    if not same:
        did = ", ".join(f"size {a.size} with root 0x{a.root.hex()}" for a in made)
        raise Finding(
            f"{where}: transaction {anchor.tx} anchored {did or 'nothing'} of this log, "
            f"not size {anchor.size} with root 0x{anchor.root.hex()}"
        )
    if same[0].block != anchor.block:
        raise Finding(
            f"{where}: stored block {anchor.block}, transaction {anchor.tx} was mined in "
            f"block {same[0].block}"
        )
    if same[0].time != anchor.time:
        raise Finding(f"{where}: stored time {anchor.time}, its block's is {same[0].time}")


def none_missing(store: Store, log: str, view: ChainView) -> None:
    """Every anchor the chain holds for the log is in the store: a deleted anchor row
    shows here. The store is read again: on a running node an anchor mined before the
    chain was read may have been recorded only since."""
    stored = {(a.size, a.tx.lower(), a.block) for a in stored_anchors(store, log)}
    for anchor in view.anchors:
        if (anchor.size, anchor.tx.lower(), anchor.block) not in stored:
            raise Finding(
                f"the chain anchored size {anchor.size} in transaction {anchor.tx} "
                f"(block {anchor.block}); the store has no record of that anchor"
            )
