"""Set points and answers as leaves of bal-setpoints (ARCHITECTURE §8): their shape, their
canonical bytes, and every rule a request or an answer can break."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785

from platone_bal.domain.leaf import Source, leaf_bytes
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.setpoints import (
    SETPOINT_LOG,
    Answer,
    InvalidSetPoint,
    SetPointRequest,
    delivery_message,
    setpoint_topic,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BODY: dict[str, Any] = {
    "producer": "producer1",
    "device": "ln001",
    "measurand": "activePowerLimit",
    "value": "3.5",
    "unit": "kW",
    "start": "2026-12-01T12:00:00Z",
    "end": "2026-12-01T14:00:00+01:00",
}


def test_a_set_point_leaf_is_canonical_and_says_what_was_asked() -> None:
    request = SetPointRequest.of(BODY)
    assert (request.start, request.end) == (T0, T0 + timedelta(hours=1))
    leaf = request.leaf(owner="0xabc", issuer="admin", time=T0, salt="00" * 16)
    assert leaf == {
        "v": 1, "log": SETPOINT_LOG, "kind": "setpoint", "producer": "producer1",
        "owner": "0xabc", "device": "ln001", "measurand": "activePowerLimit", "value": "3.5",
        "unit": "kW", "start": "2026-12-01T12:00:00.000000Z",
        "end": "2026-12-01T13:00:00.000000Z", "issuer": "admin",
        "time": "2026-12-01T12:00:00.000000Z", "salt": "00" * 16,
    }  # fmt: skip
    assert leaf_bytes(leaf) == rfc8785.dumps(leaf)
    message = json.loads(delivery_message(7, leaf))
    assert message == {"log": SETPOINT_LOG, "index": 7, "leaf": leaf}
    assert setpoint_topic("producer1", "ln001") == "setpoints/producer1/ln001"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"value": "1e400x"}, "not a decimal number"),
        ({"value": "NaN"}, "not a decimal number"),
        ({"start": "2026-12-01T12:00:00"}, "offset"),
        ({"end": "2026-12-01T11:00:00Z"}, "end must be after start"),
        ({"device": "a/b"}, "device must be a device id"),
        ({"measurand": ""}, "measurand must be text"),
        ({"unit": "x" * 33}, "unit must be text of at most 32"),
        ({"producer": 7}, "producer must be a username"),
    ],
)
def test_a_bad_request_says_why(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidSetPoint, match=reason):
        SetPointRequest.of({**BODY, **change})
    missing = dict(BODY)
    del missing["measurand"]
    with pytest.raises(InvalidSetPoint, match="measurand is required"):
        SetPointRequest.of(missing)


def answer_payload(**change: object) -> bytes:
    leaf = SetPointRequest.of(BODY).leaf(owner="0xabc", issuer="admin", time=T0, salt="11" * 16)
    document = {
        "setpoint": 3,
        "leaf_hash": "0x" + SHA3_256.hash_leaf(leaf_bytes(leaf)).hex(),
        "status": "applied",
        "time": "2026-12-01T12:00:05Z",
    }
    return json.dumps({**document, **change}).encode()


def test_an_answer_becomes_a_leaf_that_names_the_set_point_it_answers() -> None:
    answer = Answer.of(answer_payload())
    assert (answer.setpoint, answer.status, answer.time) == (
        3,
        "applied",
        T0 + timedelta(seconds=5),
    )
    source = Source("signed-envelope", "ab" * 32, T0 + timedelta(seconds=6))
    leaf = answer.leaf(
        producer="producer1", owner="0xabc", device="ln001", signer="0xdef", source=source,
        salt="22" * 16,
    )  # fmt: skip
    assert leaf["kind"] == "answer" and leaf["setpoint"] == 3 and leaf["signer"] == "0xdef"
    assert leaf["leaf_hash"] == json.loads(answer_payload())["leaf_hash"]
    assert leaf["source"] == {
        "format": "signed-envelope",
        "message": "ab" * 32,
        "received": "2026-12-01T12:00:06.000000Z",
    }
    assert leaf_bytes(leaf) == rfc8785.dumps(leaf)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (answer_payload(setpoint=-1), "setpoint must be"),
        (answer_payload(setpoint="3"), "setpoint must be"),
        (answer_payload(leaf_hash="0x12"), "leaf_hash must be"),
        (answer_payload(leaf_hash="0x" + "zz" * 32), "leaf_hash must be"),
        (answer_payload(status="done"), "status must be one of applied, refused"),
        (answer_payload(time="yesterday"), "time:"),
    ],
)
def test_a_bad_answer_says_why(payload: bytes, reason: str) -> None:
    with pytest.raises(InvalidSetPoint, match=reason):
        Answer.of(payload)
