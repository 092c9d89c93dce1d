"""Is this data what was certified? Verdicts for readings and proof bundles.

Given data is compared with the certified leaf (the bytes the log hashed), never with
the database columns, and the reading's proof is checked down to the anchor on chain.
So "valid" means: these values are exactly the ones certified, and the chain holds the
root that proves it. Every verdict says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

from platone_bal.domain.proof import AnchorLookup, Check, verify_bundle
from platone_bal.domain.readings import InvalidReading, format_time, parse_time
from platone_bal.ports import Store, StoredReading
from platone_bal.services.certification import NotYetCertified, proof_bundle

Status = Literal["valid", "invalid", "pending"]
"""pending: sound so far, but not anchored on chain yet (ask again after the interval)."""

COMPARED = ("producer", "owner", "device", "time", "measurand", "value", "unit", "attrs")


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    reason: str
    checks: list[Check] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def verdict_of(checks: list[Check]) -> Verdict:
    """valid when every check passed, invalid naming the first failure, else pending."""
    failed = next((check for check in checks if check.ok is False), None)
    if failed is not None:
        return Verdict("invalid", f"{failed.name}: {failed.detail}", checks)
    skipped = next((check for check in checks if check.ok is None), None)
    if skipped is not None:
        return Verdict("pending", f"{skipped.name}: {skipped.detail}", checks)
    return Verdict("valid", "the data is certified and anchored on chain", checks)


def check_bundle(bundle: Any, lookup: AnchorLookup | None) -> Verdict:
    return verdict_of(verify_bundle(bundle, lookup))


def locate(
    store: Store, item: dict[str, Any], may_read: Callable[[StoredReading], bool]
) -> StoredReading | None:
    """The stored reading an item names by `log` and `index`, or else by `id`, if visible."""
    reading: StoredReading | None = None
    log, index, reading_id = item.get("log"), item.get("index"), item.get("id")
    if isinstance(log, str) and _is_count(index):
        found = store.readings_in_log(log, index, 1)
        reading = found[0] if found and found[0].index == index else None
    elif _is_count(reading_id):
        reading = store.reading(reading_id)
    if reading is None or not may_read(reading):
        return None
    return reading


def check_reading(
    store: Store,
    item: Any,
    lookup: AnchorLookup | None,
    may_read: Callable[[StoredReading], bool],
) -> Verdict:
    """Compare a reading as given (e.g. from /v1/readings) with its certified leaf."""
    if not isinstance(item, dict):
        return Verdict("invalid", "a reading must be a JSON object")
    reading = locate(store, item, may_read)
    if reading is None:
        return Verdict("invalid", "no certified reading with that log and index (or id)")
    leaf_bytes = store.leaf_bytes(reading.log, reading.index)
    assert leaf_bytes is not None
    leaf = json.loads(leaf_bytes)
    for key in COMPARED:
        if key in item and not _same(key, item[key], leaf[key]):
            return Verdict("invalid", f"{key}: given {item[key]!r}, certified {leaf[key]!r}")
    if not any(key in item for key in COMPARED):
        return Verdict("invalid", f"the item names none of the certified fields {COMPARED}")
    try:
        bundle = proof_bundle(store, reading)
    except NotYetCertified as error:
        return Verdict("pending", str(error))
    return check_bundle(bundle, lookup)


def _same(key: str, given: Any, certified: Any) -> bool:
    if key == "time" and isinstance(given, str):
        try:
            return bool(format_time(parse_time(given)) == certified)
        except InvalidReading:
            return False
    if key == "value" and isinstance(given, int | float) and not isinstance(given, bool):
        return bool(str(given) == certified)
    return bool(given == certified)


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
