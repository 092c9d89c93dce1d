"""100,000 mutated payloads through the codecs, and every 20th through ingest's whole
decision (leaves included): each is decoded or refused with a reason, never an
unexpected exception, and nothing takes long enough to stall the writer.

A seeded mutator, not coverage-guided: the mutations are the kinds hostile or broken
devices send (flipped and inserted bytes, truncation, splices of the two formats,
deep nesting, huge numbers and ids, lone surrogates, invalid UTF-8, entities). The
seed is printed; BAL_FUZZ_SEED reproduces a run, BAL_FUZZ_CASES sizes it.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.codecs import DecodeError, decode
from platone_bal.domain.messages import Channel
from platone_bal.domain.users import User
from platone_bal.services.ingest import Delivery, IngestService
from tests.conftest import SAMPLE_PMU, SAMPLE_XML

CASES = int(os.environ.get("BAL_FUZZ_CASES", "100000"))
SLOWEST_ALLOWED = 2.0
"""CPU seconds of this process one payload may take to decide: far above any real one
(about 1 ms), far below a stall. Not a performance figure: a guard against pathological
inputs; CPU time, so other processes loading the machine do not count (wall time once
read 2.9 s for an ordinary payload while another test run shared the two cores)."""

Mutation = Callable[[random.Random, bytes], bytes]

INSERTS = [
    b"[" * 5000,
    b"{" * 70 + b"}" * 70,
    b'"\\ud800"',
    b"\xff\xfe",
    b"1e999999",
    b"-0.0000000000000000000000000000001",
    b"9" * 5000,
    b'"' + b"x" * 20000 + b'"',
    b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
    b"&a;",
    b"<![CDATA[",
    b"9999-12-31T23:59:59-14:00",
    b"0001-01-01T00:00:00+14:00",
    b"NaN",
    b"\x00",
    b"</MeterReadings>",
    b'"readings":[',
    b'"device":"' + b"d" * 500 + b'"',
]


def flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]


def insert(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.choice(INSERTS) + data[at:]


def delete(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    start = rng.randrange(len(data))
    return data[:start] + data[start + rng.randrange(1, 64) :]


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def duplicate(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    start = rng.randrange(len(data))
    piece = data[start : start + rng.randrange(1, 200)]
    return data[:start] + piece * rng.randrange(2, 50) + data[start:]


def splice(rng: random.Random, data: bytes) -> bytes:
    other = rng.choice((SAMPLE_XML, SAMPLE_PMU))
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other)) :]


def replace_digits(rng: random.Random, data: bytes) -> bytes:
    digits = [i for i, byte in enumerate(data) if 48 <= byte <= 57]
    if not digits:
        return data
    at = rng.choice(digits)
    return (
        data[:at]
        + rng.choice((b"1e400", b"-", b"99999999999999999999", b".", b""))
        + data[at + 1 :]
    )


MUTATIONS: list[Mutation] = [
    flip,
    insert,
    delete,
    truncate,
    duplicate,
    splice,
    replace_digits,
]


def mutated(rng: random.Random) -> bytes:
    data = rng.choice((SAMPLE_XML, SAMPLE_PMU))
    for _ in range(rng.randrange(1, 6)):
        data = rng.choice(MUTATIONS)(rng, data)
    return data


def test_mutated_payloads_are_decoded_or_refused_with_a_reason(
    store: SqliteStore, producer: User
) -> None:
    seed = int(os.environ.get("BAL_FUZZ_SEED", str(random.SystemRandom().randrange(2**32))))
    print(f"\nfuzz seed {seed} ({CASES} cases): BAL_FUZZ_SEED={seed} reproduces it")
    rng = random.Random(seed)
    ingest = IngestService(store, log_id="bal-main", max_payload_bytes=1 << 20)
    outcomes: Counter[str] = Counter()
    slowest = (0.0, b"")
    received = datetime(2020, 5, 20, 12, 0, tzinfo=UTC)
    for case in range(CASES):
        payload = mutated(rng)
        started = time.process_time()
        try:
            decoded = decode(payload)
            outcomes["decoded"] += 1
            outcomes["with problems"] += bool(decoded.problems)
        except DecodeError as error:
            assert str(error), "a refusal must say why"
            outcomes["refused"] += 1
        if case % 20 == 0:
            delivery = Delivery(Channel.MQTT, f"platone/{producer.username}", payload, received)
            record = ingest.record(delivery)
            assert record.readings or record.rejections, payload[:200]
            assert not any("internal error" in reason for reason in record.rejections), (
                record.rejections,
                payload[:300],
            )
            outcomes["ingest " + record.outcome.value] += 1
        elapsed = time.process_time() - started
        if elapsed > slowest[0]:
            slowest = (elapsed, payload)
    print(f"fuzz outcomes: {dict(outcomes)}; slowest {slowest[0] * 1000:.1f} ms")
    assert slowest[0] < SLOWEST_ALLOWED, f"{slowest[0]:.1f} s for {slowest[1][:200]!r}"
    assert outcomes["decoded"] > 0 and outcomes["refused"] > 0  # both paths were exercised


def test_a_reading_type_with_a_huge_field_is_no_code() -> None:
    """Found by the fuzzer (seed 579577031): 8,651 digits made int() raise ValueError."""
    from platone_bal.codecs.reading_type import decode_reading_type

    assert decode_reading_type(".".join(["0"] * 17 + ["9" * 8651])) is None
    assert decode_reading_type(".".join(["0"] * 17 + ["\u0661"])) is None  # a non-ASCII digit
    assert decode_reading_type(".".join(["0"] * 18)) is not None
