"""Signed checkpoints: canonical bytes, EIP-191 signatures, the checkpointer and node keys."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import rfc8785
from eth_account import Account
from eth_account.messages import encode_defunct

from platone_bal.adapters.node_keys import NodeKeys, PassphraseMismatch
from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.adapters.wallets import Wallets
from platone_bal.domain.checkpoint import (
    Anchor,
    Checkpoint,
    CheckpointError,
    SignedCheckpoint,
    log_key,
    recover_signer,
    sign_checkpoint,
    verify_signature,
)
from platone_bal.domain.merkle import SHA3_256, merkle_root
from platone_bal.domain.messages import Channel
from platone_bal.domain.readings import parse_time
from platone_bal.domain.users import User
from platone_bal.ports import ReadingQuery
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.ingest import Delivery, IngestService
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.unit.test_ingest import delivery

KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
ROOT = bytes(range(32))


def test_checkpoint_bytes_are_rfc8785_of_the_contract_object() -> None:
    checkpoint = Checkpoint("bal-main", 1000, ROOT, "2026-11-22T12:00:00.000000Z")
    expected = {
        "v": 1,
        "log": "bal-main",
        "size": 1000,
        "root": "0x" + ROOT.hex(),
        "time": "2026-11-22T12:00:00.000000Z",
    }
    assert checkpoint.to_bytes() == rfc8785.dumps(expected)
    assert checkpoint.to_bytes().startswith(b'{"log":"bal-main","root":"0x0001')


def test_signature_is_eip191_personal_sign_by_the_log_key() -> None:
    checkpoint = Checkpoint("bal-main", 7, ROOT, "2026-11-22T12:00:00.000000Z")
    signed = sign_checkpoint(checkpoint, KEY)
    assert signed.signer == Account.from_key(KEY).address
    # Any Ethereum tool recovers the signer from the bytes and the signature alone.
    message = encode_defunct(primitive=checkpoint.to_bytes())
    assert Account.recover_message(message, signature=signed.signature) == signed.signer
    verify_signature(signed)
    assert SignedCheckpoint.from_json(json.loads(json.dumps(signed.to_json()))) == signed


@pytest.mark.parametrize(
    "change",
    [
        {"size": 8},
        {"root": "0x" + bytes(32).hex()},
        {"time": "2026-11-22T12:00:01.000000Z"},
        {"log": "bal-other"},
        {"signer": Account.create().address},
    ],
)
def test_any_changed_field_fails_the_signature(change: dict[str, object]) -> None:
    signed = sign_checkpoint(Checkpoint("bal-main", 7, ROOT, "2026-11-22T12:00:00.000000Z"), KEY)
    document = {**signed.to_json(), **change}
    with pytest.raises(CheckpointError):
        verify_signature(SignedCheckpoint.from_json(document))


def test_malformed_checkpoints_are_refused_with_a_reason() -> None:
    good = sign_checkpoint(Checkpoint("l", 1, ROOT, "t"), KEY).to_json()
    for document, reason in [
        ([], "not an object"),
        ({**good, "extra": 1}, "keys must be exactly"),
        ({**good, "v": 2}, "version"),
        ({**good, "size": -1}, "non-negative"),
        ({**good, "size": True}, "non-negative"),
        ({**good, "root": "0x12"}, "32-byte"),
        ({**good, "root": "0x" + "zz" * 32}, "not hex"),
    ]:
        with pytest.raises(CheckpointError, match=reason):
            SignedCheckpoint.from_json(document)
    with pytest.raises(CheckpointError, match="cannot be recovered"):
        recover_signer(SignedCheckpoint.from_json({**good, "signature": "0x1234"}))


def test_log_key_is_keccak256_of_the_utf8_name() -> None:
    # Ethereum's keccak256 (as Solidity computes it), not FIPS SHA3-256
    assert log_key("bal-main") != hashlib.sha3_256(b"bal-main").digest()
    assert log_key("") == bytes.fromhex(
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )


NAMES = ("log-signer", "anchorer", "chain-admin")


def test_node_keys_are_encrypted_in_the_store_and_shared_by_its_nodes(tmp_path: Path) -> None:
    path = tmp_path / "scd.sqlite3"
    store = SqliteStore(path)
    first = NodeKeys(store, Wallets("p" * 64))
    addresses = {name: first[name].address for name in NAMES}
    assert len(set(addresses.values())) == 3
    for name in addresses:
        keystore = store.node_value(f"keystore/{name}")
        assert keystore is not None and "crypto" in json.loads(keystore)
        assert first[name].private_key.hex() not in keystore
    token_key = first.secret("token-key")
    assert len(bytes.fromhex(token_key)) == 32 and token_key != first.secret("session-key")
    assert token_key not in str(store.node_value("keystore/token-key"))
    again = NodeKeys(SqliteStore(path), Wallets("p" * 64))  # another node, or a restart
    assert {name: again[name].address for name in addresses} == addresses
    assert again.secret("token-key") == token_key
    assert "private" not in repr(again["anchorer"]) and again["anchorer"].private_key.hex() not in (
        repr(again["anchorer"])
    )
    with pytest.raises(PassphraseMismatch, match="BAL_KEY_PASSPHRASE"):
        NodeKeys(store, Wallets("wrong" * 13))["log-signer"]


def test_keys_and_secrets_an_older_node_kept_in_files_move_into_the_store(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    wallets = Wallets("p" * 64)
    (data / "keys").mkdir(parents=True)
    (data / "secrets").mkdir()
    address, keystore = wallets.create()
    (data / "keys" / "log-signer.json").write_text(keystore)
    (data / "secrets" / "token-key").write_text("ab" * 32 + "\n")
    store = SqliteStore(tmp_path / "scd.sqlite3")
    keys = NodeKeys(store, wallets, legacy_dir=data)
    assert keys["log-signer"].address == address
    assert keys.secret("token-key") == "ab" * 32  # tokens it issued stay valid
    assert store.node_value("keystore/log-signer") == keystore
    # the store decides from now on: another node without the files gets the same keys
    assert NodeKeys(store, wallets)["log-signer"].address == address


def test_checkpointer_signs_the_new_size_once(store: SqliteStore, producer: User) -> None:
    clock = datetime(2026, 11, 22, 12, 0, 1, tzinfo=UTC)
    checkpointer = Checkpointer(store, log_id="bal-main", private_key=KEY, clock=lambda: clock)
    assert checkpointer.checkpoint_now() is None  # empty log: nothing to sign
    ingest = IngestService(store, log_id="bal-main", max_payload_bytes=4096)
    ingest.ingest([delivery(SAMPLE_XML), delivery(SAMPLE_PMU)])
    signed = checkpointer.checkpoint_now()
    assert signed is not None
    assert checkpointer.checkpoint_now() is None  # same size: no second checkpoint
    leaves = [leaf for _, leaf in store.leaves("bal-main", 0, 100)]
    assert signed.checkpoint == Checkpoint(
        "bal-main",
        4,
        merkle_root(SHA3_256, [SHA3_256.hash_leaf(leaf) for leaf in leaves]),
        "2026-11-22T12:00:01.000000Z",
    )
    verify_signature(signed)
    assert store.latest_checkpoint("bal-main") == signed
    assert store.checkpoint("bal-main", 4) == signed
    assert store.checkpoints("bal-main") == [signed]


def test_a_checkpoint_covers_each_reading_within_one_second_of_receipt(
    store: SqliteStore, producer: User
) -> None:
    """The receipt contract of §5, read off the stored times (receipt vs checkpoint)."""
    checkpointer = Checkpointer(
        store, log_id="bal-main", private_key=KEY, clock=lambda: datetime.now(UTC)
    )
    ingest = IngestService(
        store, log_id="bal-main", max_payload_bytes=4096, on_commit=checkpointer.log_grew
    )
    checkpointer.start()
    ingest.start()
    try:
        for round_number in range(5):
            payload = SAMPLE_PMU.replace(b'"data": 11', f'"data": {round_number}'.encode())
            ingest.submit(Delivery(Channel.MQTT, "platone/producer1", payload, datetime.now(UTC)))
            assert ingest.flush()
            deadline = time.monotonic() + 10
            while (latest := store.latest_checkpoint("bal-main")) is None or (
                latest.checkpoint.size < 2 * (round_number + 1)
            ):
                assert time.monotonic() < deadline, "the log grew but no checkpoint was signed"
                time.sleep(0.005)
            (reading,) = store.readings(ReadingQuery(after=2 * round_number, limit=1))
            signed_at = parse_time(latest.checkpoint.time)
            assert timedelta(0) <= signed_at - parse_time(reading.received) < timedelta(seconds=1)
    finally:
        ingest.stop()
        checkpointer.stop()


def test_proof_checkpoint_prefers_the_smallest_anchored_one(store: SqliteStore) -> None:
    for size in (3, 5, 9):
        store.add_checkpoint(sign_checkpoint(Checkpoint("l", size, ROOT, "t"), KEY))
    assert store.checkpoint_covering("l", 4).checkpoint.size == 9  # type: ignore[union-attr]
    store.add_anchor(Anchor("l", 5, ROOT, 1337, "0xc", "0xt", 12, "t"))
    store.add_anchor(Anchor("l", 5, ROOT, 1337, "0xc", "0xt", 12, "t"))  # idempotent
    assert store.checkpoint_covering("l", 4).checkpoint.size == 5  # type: ignore[union-attr]
    assert store.checkpoint_covering("l", 2).checkpoint.size == 5  # type: ignore[union-attr]
    assert store.checkpoint_covering("l", 5).checkpoint.size == 9  # type: ignore[union-attr]
    assert store.checkpoint_covering("l", 9) is None
    assert [anchor for _, anchor in store.anchors()] == [store.anchor("l", 5)]
    assert store.latest_anchor("l") == store.anchor("l", 5)


def test_the_latest_anchors_are_the_largest_first(store: SqliteStore) -> None:
    for size in range(1, 13):
        store.add_anchor(Anchor("l", size, ROOT, 1337, "0xc", f"0x{size:x}", size, "t"))
    store.add_anchor(Anchor("other", 99, ROOT, 1337, "0xc", "0xo", 99, "t"))
    assert [a.size for a in store.latest_anchors("l", 3)] == [12, 11, 10]
    assert store.latest_anchor("l") == store.anchor("l", 12)
    assert store.latest_anchor("none") is None
