"""Blockchain transactions and the data they certified (the seed's BAP views).

An anchor transaction certifies every reading with an index below its size; the data
it brought on chain first is the span from the previous anchor's size to its own. A
reading's certifying transaction is the first anchor whose size exceeds its index.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any

from platone_bal.domain.checkpoint import Anchor
from platone_bal.ports import Store, StoredReading
from platone_bal.services.certification import dataset_certification

PAGE = 10_000


def _anchors_of(store: Store, log: str) -> list[Anchor]:
    """Every anchor of `log`, smallest size first."""
    found: list[Anchor] = []
    after = 0
    while page := store.anchors(log, after, PAGE):
        found.extend(anchor for _, anchor in page)
        after = page[-1][0]
    return sorted(found, key=lambda anchor: anchor.size)


def anchor_json(anchor: Anchor) -> dict[str, Any]:
    return {
        "transactionHash": anchor.tx,
        "block": anchor.block,
        "timestamp": anchor.time,
        "chain_id": anchor.chain_id,
        "contract": anchor.contract,
        "log": anchor.log,
        "size": anchor.size,
        "root": "0x" + anchor.root.hex(),
    }


def transactions_for(
    store: Store, readings: list[StoredReading], dataset: dict[str, Any]
) -> dict[str, Any]:
    """The transactions that certified `readings`, each with its part of the dataset
    (Data Certification fields), and the readings no anchor covers yet."""
    by_anchor: dict[tuple[str, int], list[StoredReading]] = defaultdict(list)
    anchors: dict[str, list[Anchor]] = {}
    sizes: dict[str, list[int]] = {}
    pending = 0
    for reading in readings:
        if reading.log not in anchors:
            anchors[reading.log] = _anchors_of(store, reading.log)
            sizes[reading.log] = [anchor.size for anchor in anchors[reading.log]]
        position = bisect.bisect_right(sizes[reading.log], reading.index)
        if position == len(sizes[reading.log]):
            pending += 1
        else:
            by_anchor[(reading.log, position)].append(reading)
    transactions = []
    for (log, position), covered in sorted(by_anchor.items()):
        anchor = anchors[log][position]
        certification = dataset_certification(store, covered, dataset)
        transactions.append(
            {
                **anchor_json(anchor),
                "hashedData": certification["hashedData"],
                "owner": certification["owner"],
                "dataset": certification["dataset"],
            }
        )
    return {"transactions": transactions, "pending_readings": pending}


def certified_by_transaction(
    store: Store, tx: str, start: int, limit: int
) -> tuple[Anchor, int, list[StoredReading]] | None:
    """The anchor of `tx`, where its new data starts, and a page of that data from `start`."""
    anchor = store.anchor_by_tx(tx)
    if anchor is None:
        return None
    previous = store.anchor_below(anchor.log, anchor.size)
    first = previous.size if previous else 0
    begin = max(first, start)
    count = min(limit, anchor.size - begin)
    readings = store.readings_in_log(anchor.log, begin, count) if count > 0 else []
    return anchor, first, readings
