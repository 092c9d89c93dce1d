"""Signed Light Node envelopes (ARCHITECTURE §8) through ingest, against DeviceRegistry's
events as `DeviceKeys` keeps them: what is accepted, with which signer, and each refusal
with its reason."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.codecs import DecodeError, decode
from platone_bal.codecs.envelope import FORMAT
from platone_bal.domain.devices import device_key
from platone_bal.domain.light_nodes import (
    BadSignature,
    KeyChange,
    personal_message_hash,
    recover_signer,
)
from platone_bal.domain.users import User
from platone_bal.ports import ReadingQuery, StoreUnavailable
from platone_bal.services.device_keys import DeviceKeys, KeysUnavailable
from platone_bal.services.ingest import IngestService
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.unit.test_ingest import delivery, reasons

ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
NODE = Account.from_key(b"\x01" * 32)
OTHER = Account.from_key(b"\x02" * 32)


def sign(payload: bytes, account: object = NODE) -> bytes:
    return bytes(Account.sign_message(encode_defunct(primitive=payload), account.key).signature)  # type: ignore[attr-defined]


def envelope(
    payload: bytes = SAMPLE_PMU,
    device: str = "pmu1",
    signature: bytes | None = None,
    **extra: object,
) -> bytes:
    signature = sign(payload) if signature is None else signature
    document = {
        "v": 1,
        "device": device,
        "payload": payload.decode(),
        "signature": "0x" + signature.hex(),
    }
    return json.dumps({**document, **extra}).encode()


class Registry:
    """DeviceKeyEvents from a list: each change in a block of its own."""

    def __init__(self) -> None:
        self.changes: list[KeyChange] = []
        self.failing = False

    def register(self, device: str, key: str, producer: str = "producer1") -> None:
        block = len(self.changes) + 1
        self.changes.append(
            KeyChange(device_key(producer, device), key, NODE.address, f"0x{block:064x}", block)
        )

    def revoke(self, device: str, producer: str = "producer1") -> None:
        block = len(self.changes) + 1
        self.changes.append(
            KeyChange(device_key(producer, device), None, None, f"0x{block:064x}", block)
        )

    def first_block(self) -> int:
        return 0

    def key_changes(self, from_block: int) -> tuple[list[KeyChange], int]:
        from platone_bal.ports import ChainError

        if self.failing:
            raise ChainError("the node is down")
        return [c for c in self.changes if c.block >= from_block], len(self.changes)


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.register("pmu1", NODE.address)
    return registry


@pytest.fixture
def keys(registry: Registry) -> DeviceKeys:
    keys = DeviceKeys(registry)
    keys.refresh()
    return keys


@pytest.fixture
def ingest(store: SqliteStore, producer: User, keys: DeviceKeys) -> IngestService:
    service = IngestService(store, log_id="bal-main", max_payload_bytes=1 << 16)
    service.records.keys = keys
    return service


def test_recovery_is_eip191_and_refuses_malleable_signatures() -> None:
    payload = b"some bytes"
    signature = sign(payload)
    assert recover_signer(payload, signature) == NODE.address
    assert personal_message_hash(payload) == _hash_eip191_message(encode_defunct(primitive=payload))
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    high = r + (ORDER - s).to_bytes(32, "big") + bytes([55 - v])  # the same signature, mirrored
    with pytest.raises(BadSignature, match="not canonical"):
        recover_signer(payload, high)
    with pytest.raises(BadSignature, match="v is 1"):
        recover_signer(payload, signature[:64] + b"\x01")
    with pytest.raises(BadSignature):
        recover_signer(payload, bytes(65))
    assert recover_signer(b"other bytes", signature) != NODE.address


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"v": 2}, "version must be the number 1"),
        ({"v": "1"}, "version must be the number 1"),
        ({"device": "a/b"}, "no valid 'device'"),
        ({"payload": ""}, "'payload' must be the signed text"),
        ({"signature": "0x1234"}, "65 bytes in hex"),
        ({"extra": 1}, "unknown keys: extra"),
    ],
)
def test_malformed_envelopes_are_decode_errors(document: dict[str, object], reason: str) -> None:
    valid = json.loads(envelope())
    with pytest.raises(DecodeError, match=reason):
        decode(json.dumps({**valid, **document}).encode())


def test_an_envelope_decodes_to_its_payloads_readings() -> None:
    decoded = decode(envelope(SAMPLE_XML, "11111111"))
    assert decoded.format == FORMAT and len(decoded.readings) == 2
    assert decoded.envelope is not None and decoded.envelope.payload == SAMPLE_XML
    with pytest.raises(DecodeError, match="an envelope inside an envelope"):
        decode(envelope(envelope()))
    with pytest.raises(DecodeError, match=r"signed envelope's payload: .*neither XML"):
        decode(envelope(b"hello"))


def test_a_signed_envelope_gives_readings_with_their_signer(
    ingest: IngestService, store: SqliteStore
) -> None:
    sent = envelope()
    result = ingest.ingest([delivery(sent, "platone/producer1/pmu1")])
    assert (result.readings, result.rejections) == (2, 0), reasons(store)
    rows = store.readings(ReadingQuery())
    assert [r.attrs["signer"] for r in rows] == [NODE.address] * 2
    assert {r.format for r in rows} == {FORMAT}
    assert {r.message for r in rows} == {__import__("hashlib").sha3_256(sent).hexdigest()}
    leaf = json.loads(store.leaf_bytes("bal-main", rows[0].index) or b"")
    assert leaf["attrs"]["signer"] == NODE.address


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (
            envelope(signature=sign(SAMPLE_PMU, OTHER)),
            f"signed by {OTHER.address}, but device 'pmu1'",
        ),
        (envelope(signature=sign(b"another payload")), "signed by 0x"),
        (envelope(signature=b"\x00" * 64 + b"\x1b"), "bad signature"),
        (
            envelope(SAMPLE_PMU.replace(b'"pmu1"', b'"pmu2"'), "pmu2"),
            "device 'pmu2' has no key in DeviceRegistry",
        ),
        (envelope(device="pmu2"), "device 'pmu2' has no key in DeviceRegistry"),
    ],
    ids=["other-key", "forged", "garbage-signature", "no-key", "replayed-as-other-device"],
)
def test_refused_envelopes_say_why(
    ingest: IngestService, store: SqliteStore, sent: bytes, reason: str
) -> None:
    result = ingest.ingest([delivery(sent, "platone/producer1")])
    assert result.readings == 0
    assert reason in reasons(store)[0], reasons(store)


def test_a_device_mismatch_inside_a_valid_envelope_is_refused(
    ingest: IngestService, store: SqliteStore, registry: Registry, keys: DeviceKeys
) -> None:
    registry.register("pmu2", NODE.address)
    keys.refresh()
    # signed for pmu2 by its key, but the readings inside are pmu1's
    result = ingest.ingest([delivery(envelope(device="pmu2"), "platone/producer1")])
    assert result.readings == 0
    assert "device mismatch, the envelope is signed for device 'pmu2'" in reasons(store)[0]


def test_a_revoked_key_is_refused_and_a_rotated_one_accepted(
    ingest: IngestService, store: SqliteStore, registry: Registry, keys: DeviceKeys
) -> None:
    registry.revoke("pmu1")
    assert keys.refresh() == 1
    assert ingest.ingest([delivery(envelope())]).readings == 0
    assert "was revoked" in reasons(store)[0]
    registry.register("pmu1", OTHER.address)  # rotation: a new key after the revoke
    keys.refresh()
    again = SAMPLE_PMU.replace(b"11", b"12", 1)
    assert ingest.ingest([delivery(envelope(again, signature=sign(again, OTHER)))]).readings == 2
    assert ingest.ingest([delivery(envelope(again.replace(b"12", b"13", 1)))]).readings == 0
    assert f"registered with key {OTHER.address}" in reasons(store)[-1]


def test_a_device_with_a_key_must_sign_others_need_not(
    ingest: IngestService, store: SqliteStore, registry: Registry, keys: DeviceKeys
) -> None:
    unsigned = ingest.ingest([delivery(SAMPLE_PMU)])
    assert unsigned.readings == 0
    assert (
        "device 'pmu1' has a key in DeviceRegistry and must send signed envelopes"
        in (reasons(store)[0])
    )
    assert ingest.ingest([delivery(SAMPLE_XML)]).readings == 2  # meter 11111111 has no key
    registry.revoke("pmu1")
    keys.refresh()
    assert ingest.ingest([delivery(SAMPLE_PMU)]).readings == 2  # revoked: may send unsigned
    assert all("signer" not in r.attrs for r in store.readings(ReadingQuery()))


def test_before_the_registry_is_read_ingest_waits_instead_of_deciding(
    store: SqliteStore, producer: User, registry: Registry
) -> None:
    keys = DeviceKeys(registry)
    registry.failing = True
    keys.start()  # the first read fails: the thread retries
    try:
        service = IngestService(store, log_id="bal-main", max_payload_bytes=1 << 16)
        service.records.keys = keys
        with pytest.raises(KeysUnavailable, match="the node is down"):
            service.ingest([delivery(envelope())])
        with pytest.raises(StoreUnavailable):  # unsigned too: it may be a device that must sign
            service.ingest([delivery(SAMPLE_PMU)])
        assert store.readings(ReadingQuery()) == [] and reasons(store) == []
        registry.failing = False
        keys.refresh()
        assert service.ingest([delivery(envelope())]).readings == 2
    finally:
        keys.stop()


def test_without_a_registry_envelopes_are_refused(store: SqliteStore, producer: User) -> None:
    service = IngestService(store, log_id="bal-main", max_payload_bytes=1 << 16)
    assert service.ingest([delivery(envelope())]).readings == 0
    assert "no DeviceRegistry here" in reasons(store)[0]
    assert service.ingest([delivery(SAMPLE_PMU)]).readings == 2
