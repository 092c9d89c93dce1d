"""The promises checked over the API: proofs verified offline, signed checkpoints that
never fork, shrink or go back in time, consistency proofs between them."""

from __future__ import annotations

import itertools
import random
import threading
from datetime import datetime
from typing import Any

from benchmarks.hammering.api import PAGE, Api, Reading
from benchmarks.hammering.ledger import Tally
from platone_bal.domain.checkpoint import (
    CheckpointError,
    SignedCheckpoint,
    parse_hash,
    verify_signature,
)
from platone_bal.domain.merkle import SHA3_256, verify_consistency
from platone_bal.domain.proof import verify_bundle


class CheckpointBook:
    """Signed checkpoints seen anywhere (listing, proofs), each verified once.

    Promises checked: every signature holds and is by one signer; one root per size (a
    checkpoint never changes); the newest listed size never goes down and no listed
    checkpoint disappears; a larger checkpoint is never older than a smaller one.
    """

    def __init__(self, log: str, tally: Tally) -> None:
        self.log = log
        self.tally = tally
        self._lock = threading.Lock()
        self._polling = threading.Lock()
        self.by_size: dict[int, SignedCheckpoint] = {}
        self.signer: str | None = None
        self.head = 0
        """The largest size the listing ever showed."""
        self._cursor: str | None = None
        self._cursor_size = 0
        self._listed: set[int] = set()

    def add(self, document: Any, source: str) -> SignedCheckpoint | None:
        """Verify a checkpoint document and keep it; None (and a failure) if it is bad."""
        try:
            signed = SignedCheckpoint.from_json(document)
            verify_signature(signed)
        except CheckpointError as error:
            self.tally.fail("checkpoints_invalid", f"{source}: {error}: {document}")
            return None
        size = signed.checkpoint.size
        with self._lock:
            if self.signer is None:
                self.signer = signed.signer
            signer, known = self.signer, self.by_size.get(size)
        if signed.signer != signer:
            self.tally.fail(
                "checkpoints_invalid",
                f"{source}: size {size} signed by {signed.signer}, not by {signer} like the others",
            )
            return None
        if signed.checkpoint.log != self.log:
            self.tally.fail(
                "checkpoints_invalid", f"{source}: checkpoint of log {signed.checkpoint.log}"
            )
            return None
        if known is not None:
            if known.to_json() != signed.to_json():
                self.tally.fail(
                    "checkpoints_invalid",
                    f"{source}: checkpoint of size {size} changed: {known.to_json()} -> "
                    f"{signed.to_json()}",
                )
                return None
            return known
        with self._lock:
            return self.by_size.setdefault(size, signed)

    def poll(self, api: Api) -> None:
        """Read the listing from the last full page on and check it against what was seen."""
        with self._polling:
            start_size = self._cursor_size
            expected = {size for size in self._listed if size > start_size}
            got: list[int] = []
            while True:
                params: dict[str, Any] = {"limit": PAGE}
                if self._cursor is not None:
                    params["cursor"] = self._cursor
                page = api.ok(f"/v1/logs/{self.log}/checkpoints", params)
                if page is None:
                    return
                items = page["items"]
                for item in items:
                    document = {key: value for key, value in item.items() if key != "anchor"}
                    if self.add(document, "listing") is not None:
                        got.append(int(item["size"]))
                if page["next_cursor"] is None:
                    break
                self._cursor = page["next_cursor"]
                self._cursor_size = int(items[-1]["size"])
            self.tally.add("checkpoints.polls")
            vanished = expected - set(got)
            if vanished:
                self.tally.fail(
                    "checkpoint_shrinks", f"listed checkpoints vanished: {sorted(vanished)}"
                )
            if got != sorted(set(got)):
                self.tally.fail("checkpoint_shrinks", f"listing not by growing size: {got}")
            newest = max(got, default=start_size)
            if newest < self.head:
                self.tally.fail(
                    "checkpoint_shrinks", f"newest checkpoint {newest} after {self.head}"
                )
            self.head = max(self.head, newest)
            self._listed.update(got)
            self._check_times()

    def _check_times(self) -> None:
        """A larger checkpoint was signed no earlier than a smaller one."""
        with self._lock:
            ordered = [self.by_size[size] for size in sorted(self.by_size)]
        for smaller, larger in itertools.pairwise(ordered):
            if _moment(larger.checkpoint.time) < _moment(smaller.checkpoint.time):
                self.tally.fail(
                    "checkpoint_shrinks",
                    f"size {larger.checkpoint.size} signed at {larger.checkpoint.time}, before "
                    f"size {smaller.checkpoint.size} at {smaller.checkpoint.time}",
                )

    def sizes(self) -> list[int]:
        with self._lock:
            return sorted(self.by_size)

    def get(self, size: int) -> SignedCheckpoint:
        with self._lock:
            return self.by_size[size]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Checks:
    """Proofs and consistency checked against the node's own signed checkpoints."""

    def __init__(self, log: str, tally: Tally) -> None:
        self.log = log
        self.tally = tally
        self.book = CheckpointBook(log, tally)

    def proof(self, api: Api, reading: Reading) -> None:
        """Fetch the proof bundle of a reading and verify it (not yet certified: counted)."""
        answer = api.get(f"/v1/readings/{reading.id}/proof")
        if answer.status_code == 409:
            self.tally.add("proofs.not_yet_certified")
            return
        if answer.status_code != 200:
            if answer.status_code < 500:
                self.tally.fail(
                    "http_errors", f"proof of {reading}: {answer.status_code} {answer.text}"
                )
            return
        self.verify_proof(answer.json(), reading)

    def verify_proof(self, bundle: Any, reading: Reading) -> None:
        problems = [
            f"{check.name}: {check.detail}" for check in verify_bundle(bundle) if check.ok is False
        ]
        if not problems:
            leaf = bundle["leaf"]
            expected = {
                "index": (bundle["index"], reading.index),
                "device": (leaf["device"], reading.device),
                "producer": (leaf["producer"], reading.producer),
                "log": (leaf["log"], self.log),
            }
            problems += [
                f"{name} is {got!r}, not {want!r}"
                for name, (got, want) in expected.items()
                if got != want
            ]
            if self.book.add(bundle["checkpoint"], f"proof of reading {reading.id}") is None:
                problems.append("its checkpoint is not one of the log's")
        if problems:
            self.tally.fail("proofs_invalid", f"reading {reading}: {'; '.join(problems)}")
            return
        self.tally.add("proofs.verified")
        if bundle["anchor"] is not None:
            self.tally.add("proofs.anchored")

    def consistency(self, rng: random.Random, api: Api) -> None:
        """Collect checkpoints, then prove an older one consistent with a newer one."""
        self.book.poll(api)
        sizes = self.book.sizes()
        if rng.random() < 0.3 and sizes:
            self.refetch(api, rng.choice(sizes))
        if len(sizes) < 2:
            self.tally.add("consistency.too_few_checkpoints")
            return
        first = rng.choice(sizes[:-1])
        later = [size for size in sizes if size > first]
        second = later[-1] if rng.random() < 0.5 else rng.choice(later)
        self.check_consistency(api, first, second)

    def refetch(self, api: Api, size: int) -> None:
        """A signed checkpoint, asked for again, is the same."""
        body = api.ok(f"/v1/logs/{self.log}/checkpoints/{size}")
        if body is not None:
            document = {key: value for key, value in body.items() if key != "anchor"}
            if self.book.add(document, f"checkpoint {size} asked again") is not None:
                self.tally.add("checkpoints.refetched")

    def check_consistency(self, api: Api, first: int, second: int) -> bool:
        old, new = self.book.get(first).checkpoint, self.book.get(second).checkpoint
        body = api.ok(f"/v1/logs/{self.log}/consistency", {"from": first, "to": second})
        if body is None:
            self.tally.fail("consistency_failed", f"{first} -> {second}: no proof served")
            return False
        problems = []
        if body.get("from_root") != "0x" + old.root.hex():
            problems.append(f"from_root {body.get('from_root')} is not the signed root")
        if body.get("to_root") != "0x" + new.root.hex():
            problems.append(f"to_root {body.get('to_root')} is not the signed root")
        try:
            proof = [parse_hash(node) for node in body["proof"]]
        except (CheckpointError, KeyError, TypeError) as error:
            problems.append(f"malformed proof: {error}")
        else:
            if not verify_consistency(SHA3_256, first, second, old.root, new.root, proof):
                problems.append("the proof does not verify against the signed roots")
        if problems:
            self.tally.fail("consistency_failed", f"{first} -> {second}: {'; '.join(problems)}")
            return False
        self.tally.add("consistency.ok")
        return True

    def final(self, api: Api) -> None:
        """One more checkpoint poll and a consistency check from the oldest to the newest."""
        self.book.poll(api)
        sizes = self.book.sizes()
        if len(sizes) >= 2:
            self.check_consistency(api, sizes[0], sizes[-1])
