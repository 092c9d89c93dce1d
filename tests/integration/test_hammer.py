"""The hammer (benchmarks/hammering/, run as benchmarks/hammer.py) against its own `bal up`:
no promise broken.

BAL_HAMMER_SECONDS (default 60) sets how long it hammers. A second test feeds the
hammer's checkers broken evidence, so a run that finds nothing means something.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchmarks.hammering import (
    ACTIONS,
    FAILURES,
    Api,
    Checks,
    OneAtATime,
    Reading,
    Sent,
    Tally,
    compare,
    main,
)

from platone_bal.domain.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint
from platone_bal.domain.leaf import leaf_bytes
from platone_bal.domain.merkle import SHA3_256, Frontier, MemoryNodes, consistency_proof
from platone_bal.domain.merkle import inclusion_proof as path_of
from platone_bal.domain.proof import build_bundle
from tests.conftest import require_binary

SECONDS = float(os.environ.get("BAL_HAMMER_SECONDS", "60"))


@pytest.mark.timeout(SECONDS + 180)
def test_hammer_finds_every_promise_kept(tmp_path: Path) -> None:
    require_binary("mosquitto")
    report_file = tmp_path / "hammer.json"
    code = main(["--seconds", str(SECONDS), "--report", str(report_file)])
    report = json.loads(report_file.read_text())
    assert report["failures"] == dict.fromkeys(FAILURES, 0), report["problems"]
    assert code == 0 and report["ok"]
    assert all(report["actions"][kind] >= 1 for kind in ACTIONS), report["actions"]
    messages = report["messages"]
    # Every PUBACKed payload is stored, once. A payload may also be stored without its
    # PUBACK having reached the publisher (a burst disconnects at once): at least once
    # allows that, so those are counted apart and not required.
    assert messages["pubacked"] > 0
    assert messages["stored_pubacked"] == messages["pubacked"]
    assert messages["stored"] == messages["stored_pubacked"] + messages["stored_unacked"]
    assert messages["lost"] == messages["duplicated"] == messages["phantom"] == 0
    assert report["store"]["readings"] == messages["readings"] + messages["probes"]
    assert report["proofs"]["verified"] > 0 and report["proofs"]["invalid"] == 0
    assert report["consistency"]["ok"] > 0 and report["consistency"]["failed"] == 0
    sessions = report["persistent_sessions"]
    assert sessions["resumes"] > 0
    # each persistent session has a login of its own: nothing else takes it over or wipes it
    assert sessions["session_present_on_resume"] == sessions["resumes"]
    # a login for each worker and each persistent session, none shared
    producers = report["workload"]["producers"]
    logins = producers["per_worker"] + producers["per_session"]
    assert len(producers["per_worker"]) == report["workload"]["workers"]
    assert len(producers["per_session"]) >= 2
    assert len(set(logins)) == len(logins)
    assert 2 <= messages["producers"] <= len(logins)
    assert report["node"]["exit_code"] == 0


# the checkers notice what they are there to notice

LOG = "bal-main"
KEY = bytes(range(1, 33))
OTHER_KEY = bytes(range(2, 34))
PRODUCER = "hammer-test-w0"
OTHER = "hammer-test-s0"


def leaf(device: str) -> dict[str, Any]:
    return {
        "v": 1,
        "log": LOG,
        "producer": PRODUCER,
        "owner": "0x" + "11" * 20,
        "device": device,
        "time": "2026-01-01T00:00:00.000000Z",
        "measurand": "frequency",
        "value": "50",
        "unit": None,
        "attrs": {},
        "source": {
            "format": "pmu-json",
            "message": "ab" * 32,
            "received": "2026-01-01T00:00:00.000000Z",
        },
        "salt": "cd" * 16,
    }


def device(number: int, producer: str = PRODUCER) -> str:
    return f"{producer}-{number}"


def reading(number: int, producer: str = PRODUCER) -> Reading:
    """The reading of id `number`, leaf `number - 1`, as its producer's listing shows it."""
    return Reading(id=number, index=number - 1, producer=producer, device=device(number))


class Log:
    """A small signed log as the node keeps one."""

    def __init__(self, size: int) -> None:
        self.leaves = [leaf(device(n + 1)) for n in range(size)]
        self.nodes = MemoryNodes()
        self.frontier = Frontier(SHA3_256)
        self.checkpoints: dict[int, dict[str, Any]] = {}
        for number, item in enumerate(self.leaves, start=1):
            self.nodes.add(self.frontier.append(SHA3_256.hash_leaf(leaf_bytes(item))))
            if number in (3, 5, 8):
                self.checkpoints[number] = self.sign(number, self.frontier.root())

    def sign(self, size: int, root: bytes, key: bytes = KEY) -> dict[str, Any]:
        checkpoint = Checkpoint(LOG, size, root, f"2026-01-01T00:00:0{size}.000000Z")
        return sign_checkpoint(checkpoint, key).to_json()

    def bundle(self, index: int, size: int) -> dict[str, Any]:
        signed = SignedCheckpoint.from_json(self.checkpoints[size])
        path = path_of(SHA3_256, self.nodes, index, size)
        return build_bundle(leaf_bytes(self.leaves[index]), index, signed, path, None)


def fake_api(tally: Tally, answers: dict[str, Any]) -> Api:
    """An Api whose GETs are answered from `answers` (path -> JSON)."""

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answers[request.url.path])

    class NoTokens:
        def header(self, refresh: bool = False) -> dict[str, str]:
            return {}

    api = Api("http://bal.invalid", NoTokens(), tally)  # type: ignore[arg-type]
    api.http = httpx.Client(base_url="http://bal.invalid", transport=httpx.MockTransport(handle))
    return api


def test_the_hammer_notices_broken_promises() -> None:
    log = Log(8)
    tally = Tally()
    checker = Checks(LOG, tally)

    checker.verify_proof(log.bundle(4, 5), reading(5))
    assert tally.counts["proofs.verified"] == 1 and tally.failures["proofs_invalid"] == 0

    tampered = log.bundle(2, 8)
    tampered["leaf"]["value"] = "51"
    checker.verify_proof(tampered, reading(3))
    # a sound proof, but of another reading than the one asked for
    checker.verify_proof(log.bundle(2, 8), reading(4))
    assert tally.failures["proofs_invalid"] == 2
    # the right leaf and device, but the reading was listed for another producer
    checker.verify_proof(log.bundle(4, 5), Reading(5, 4, OTHER, device(5)))
    assert tally.failures["proofs_invalid"] == 3

    forged = log.bundle(1, 3)
    forged["checkpoint"] = log.sign(3, bytes.fromhex(forged["checkpoint"]["root"][2:]), OTHER_KEY)
    checker.verify_proof(forged, reading(2))
    assert tally.failures["proofs_invalid"] == 4
    assert tally.failures["checkpoints_invalid"] == 1  # signed by another key

    # the same size with another root: a fork
    assert checker.book.add(log.sign(8, b"\x07" * 32), "test") is None
    assert tally.failures["checkpoints_invalid"] == 2

    consistency = f"/v1/logs/{LOG}/consistency"
    proof = consistency_proof(SHA3_256, log.nodes, 5, 8)
    good = {
        "from_root": log.checkpoints[5]["root"],
        "to_root": log.checkpoints[8]["root"],
        "proof": ["0x" + node.hex() for node in proof],
    }
    assert checker.check_consistency(fake_api(tally, {consistency: good}), 5, 8)
    bad = good | {"proof": ["0x" + (b"\x00" * 32).hex(), *good["proof"][1:]]}
    assert not checker.check_consistency(fake_api(tally, {consistency: bad}), 5, 8)
    assert tally.failures["consistency_failed"] == 1

    listing = f"/v1/logs/{LOG}/checkpoints"
    page = {"items": [log.checkpoints[3], log.checkpoints[5]], "next_cursor": None}
    checker.book.poll(fake_api(tally, {listing: page}))
    assert tally.failures["checkpoint_shrinks"] == 0
    shrunk = {"items": [log.checkpoints[3]], "next_cursor": None}
    checker.book.poll(fake_api(tally, {listing: shrunk}))
    assert tally.failures["checkpoint_shrinks"] >= 1

    # two producers; what counts is (producer, device)
    sent = {device(n): Sent(PRODUCER, "burst") for n in range(1, 6)}
    sent |= {device(n, OTHER): Sent(OTHER, "persistent") for n in range(6, 9)}
    acked = {device(1), device(2), device(3), device(6, OTHER), device(7, OTHER)}
    stored = Counter(
        {
            (PRODUCER, device(1)): 1,  # acked, once
            (PRODUCER, device(2)): 2,  # acked, twice: duplicated
            # device(3) acked, not stored: lost
            (PRODUCER, device(4)): 1,  # not acked but stored: allowed
            (PRODUCER, device(9)): 1,  # never sent: phantom
            (OTHER, device(6, OTHER)): 1,
            (PRODUCER, device(7, OTHER)): 1,  # under the wrong producer: phantom, and lost
            (PRODUCER, "probe-1"): 1,
            (OTHER, "probe-1"): 1,
        }
    )
    messages = compare(sent, acked, stored, tally)
    assert (messages["lost"], messages["duplicated"], messages["phantom"]) == (2, 1, 2)
    assert messages["stored_pubacked"] == 3 and messages["stored_unacked"] == 1
    assert messages["probes"] == 2 and messages["producers"] == 2
    assert messages["by_action"]["persistent"] == {
        "sent": 3,
        "pubacked": 2,
        "stored": 1,
        "lost": 1,
    }

    # the hammer's own discipline: one thread at a time per login
    logins = OneAtATime(tally)
    with logins.use(PRODUCER), logins.use(OTHER):
        pass
    with logins.use(PRODUCER):
        assert tally.failures["errors"] == 0
        with logins.use(PRODUCER):
            assert tally.failures["errors"] == 1
    with logins.use(PRODUCER):
        assert tally.failures["errors"] == 1
