"""A Light Node's signed answer to a set point (ARCHITECTURE §8) through ingest: logged in
bal-setpoints after the set point it names, or refused with the reason."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import timedelta

import pytest

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.devices import Device, DeviceKind
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.setpoints import SETPOINT_LOG, SetPointRequest
from platone_bal.domain.users import User
from platone_bal.ports import StoredSetPoint
from platone_bal.services.device_keys import DeviceKeys
from platone_bal.services.ingest import IngestService
from platone_bal.services.setpoints import SetPointService
from platone_bal.simulate import signed_envelope
from tests.unit.test_ingest import NOW, delivery, reasons
from tests.unit.test_light_nodes import NODE, OTHER, Registry

TOPIC = "platone/producer1/ln1/ack"


@pytest.fixture
def setpoints(store: SqliteStore, producer: User) -> SetPointService:
    for device in ("ln1", "ln2"):
        store.add_device(Device("producer1", device, DeviceKind.LIGHT_NODE, NOW))
    return SetPointService(store, lambda: NOW)


@pytest.fixture
def ingest(store: SqliteStore, producer: User) -> IngestService:
    registry = Registry()
    registry.register("ln1", NODE.address)
    registry.register("ln2", OTHER.address)
    keys = DeviceKeys(registry)
    keys.refresh()
    service = IngestService(store, log_id="bal-main", max_payload_bytes=1 << 16)
    service.records.keys = keys
    return service


def issue(setpoints: SetPointService, device: str = "ln1") -> StoredSetPoint:
    request = SetPointRequest(
        "producer1", device, "activePowerLimit", "3.5", "kW", NOW, NOW + timedelta(hours=1)
    )
    return setpoints.issue(request, "admin")


def answer(
    store: SqliteStore,
    setpoint: StoredSetPoint,
    status: str = "applied",
    device: str = "ln1",
    account: object = NODE,
    leaf_hash: str | None = None,
) -> bytes:
    leaf = store.leaf_bytes(SETPOINT_LOG, setpoint.index)
    assert leaf is not None
    body = {
        "setpoint": setpoint.index,
        "leaf_hash": leaf_hash or "0x" + SHA3_256.hash_leaf(leaf).hex(),
        "status": status,
        "time": (NOW + timedelta(seconds=5)).isoformat(),
    }
    return signed_envelope(json.dumps(body).encode(), device, account)  # type: ignore[arg-type]


def test_a_signed_answer_is_logged_after_its_set_point(
    store: SqliteStore, setpoints: SetPointService, ingest: IngestService
) -> None:
    setpoint = issue(setpoints)
    sent = answer(store, setpoint)
    result = ingest.ingest([delivery(sent, TOPIC, sender="producer1/ln1")])
    assert (result.answers, result.readings, result.rejections) == (1, 0, 0), reasons(store)
    answered = store.setpoint(setpoint.id)
    assert answered is not None
    assert (answered.status, answered.answer_index, answered.answer_signer) == (
        "applied", 1, NODE.address,
    )  # fmt: skip
    leaf = json.loads(store.leaf_bytes(SETPOINT_LOG, 1) or b"")
    assert (leaf["kind"], leaf["setpoint"], leaf["status"], leaf["signer"]) == (
        "answer", setpoint.index, "applied", NODE.address,
    )  # fmt: skip
    assert leaf["source"]["message"] == hashlib.sha3_256(sent).hexdigest()
    assert store.log_size(SETPOINT_LOG) == 2 and store.log_size("bal-main") == 0
    again = answer(store, setpoint, status="refused")
    assert ingest.ingest([delivery(again, TOPIC)]).answers == 0
    assert "set point 1 is applied: it takes no answer" in reasons(store)[-1]


def test_two_answers_in_one_batch_log_the_first(
    store: SqliteStore, setpoints: SetPointService, ingest: IngestService
) -> None:
    setpoint = issue(setpoints)
    first, second = answer(store, setpoint), answer(store, setpoint, status="refused")
    result = ingest.ingest([delivery(first, TOPIC), delivery(second, TOPIC)])
    assert result.answers == 1
    assert "was already answered" in reasons(store)[0]
    stored = store.setpoint(setpoint.id)
    assert stored is not None and stored.status == "applied"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda s, p: answer(s, p, account=OTHER), "signed by"),
        (lambda s, p: answer(s, p, leaf_hash="0x" + "00" * 32), "leaf_hash is not the leaf"),
        (lambda s, p: answer(s, p, status="done"), "status must be one of"),
        (lambda s, p: answer(s, p, device="ln2", account=OTHER), "is signed for device 'ln2'"),
        (lambda s, p: json.dumps({"setpoint": 0}).encode(), "not a signed envelope"),
        (lambda s, p: b"<xml/>", "must be a JSON object"),
    ],
    ids=["other-key", "wrong-leaf", "bad-status", "other-device", "unsigned", "not-json"],
)
def test_refused_answers_say_why(
    store: SqliteStore, setpoints: SetPointService, ingest: IngestService, make: object, reason: str
) -> None:
    setpoint = issue(setpoints)
    result = ingest.ingest([delivery(make(store, setpoint), TOPIC)])  # type: ignore[operator]
    assert result.answers == 0
    assert reason in reasons(store)[0], reasons(store)
    stored = store.setpoint(setpoint.id)
    assert stored is not None and stored.status == "issued"


def test_an_answer_for_another_devices_or_an_expired_set_point_is_refused(
    store: SqliteStore, setpoints: SetPointService, ingest: IngestService
) -> None:
    theirs = issue(setpoints, "ln2")
    assert ingest.ingest([delivery(answer(store, theirs), TOPIC)]).answers == 0
    assert f"no set point at index {theirs.index} for device 'ln1'" in reasons(store)[0]
    mine = issue(setpoints)
    store.expire_setpoints("9999-01-01T00:00:00.000000Z")
    assert ingest.ingest([delivery(answer(store, mine), TOPIC)]).answers == 0
    assert f"set point {mine.id} is expired" in reasons(store)[-1]


def test_bal_audit_names_a_set_point_or_an_answer_changed_in_its_row(
    store: SqliteStore, setpoints: SetPointService, ingest: IngestService
) -> None:
    from platone_bal.services.audit import audit_log

    setpoint = issue(setpoints)
    assert ingest.ingest([delivery(answer(store, setpoint), TOPIC)]).answers == 1
    assert audit_log(store, SETPOINT_LOG, None).ok
    db = sqlite3.connect(store.path)
    db.execute("UPDATE setpoints SET value = '9' WHERE id = ?", (setpoint.id,))
    db.commit()
    report = audit_log(store, SETPOINT_LOG, None)
    assert (report.problem, report.bad_index) == ("value: stored '9', certified leaf says '3.5'", 0)
    db.execute("UPDATE setpoints SET value = '3.5', answer_status = 'refused'")
    db.commit()
    report = audit_log(store, SETPOINT_LOG, None)
    assert report.problem == "status: stored 'refused', certified leaf says 'applied'"
    assert report.bad_index == 1
