"""The Solidity contracts on a real EVM (py-evm, the embedded chain in a temp dir)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import TransactionNotFound

from platone_bal.adapters.embedded_chain import EmbeddedChain
from platone_bal.adapters.web3_chain import (
    ChainError,
    Deployment,
    Transactor,
    Web3Chain,
    contract,
    deploy_contracts,
)
from platone_bal.domain.checkpoint import log_key
from platone_bal.domain.decisions import CONTRACT_STATUS, Decision, typed_data

ADMIN = Account.create()
ANCHORER = Account.create()
STRANGER = Account.create()
ROOT = b"\x11" * 32


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedChain]:
    path = tmp_path_factory.mktemp("chain") / "chain.sqlite3"
    embedded = EmbeddedChain(
        path, chain_id=1337, funded=[ADMIN.address, ANCHORER.address, STRANGER.address]
    )
    yield embedded
    embedded.close()


@pytest.fixture(scope="module")
def w3(chain: EmbeddedChain) -> Web3:
    return Web3(chain.provider)


@pytest.fixture(scope="module")
def deployment(w3: Web3) -> Deployment:
    return deploy_contracts(w3, ADMIN.key, [ANCHORER.address])


def as_(w3: Web3, account: Any) -> Transactor:
    return Transactor(w3, account.key)


# CertificationRegistry


def test_anchor_records_the_root_and_emits_anchored(w3: Web3, deployment: Deployment) -> None:
    chain = Web3Chain(w3, deployment, ANCHORER.key)
    anchor = chain.anchor("log-a", 10, ROOT)
    assert (anchor.size, anchor.root, anchor.chain_id) == (10, ROOT, 1337)
    receipt = w3.eth.get_transaction_receipt(anchor.tx)
    (event,) = chain.registry.events.Anchored().process_receipt(receipt)
    assert event["args"]["logId"] == log_key("log-a")
    assert (event["args"]["size"], event["args"]["root"]) == (10, ROOT)
    block = w3.eth.get_block(anchor.block)
    assert event["args"]["timestamp"] == block["timestamp"]
    assert chain.latest("log-a") == (10, ROOT, block["timestamp"])
    assert chain.root_at("log-a", 10) == ROOT
    assert chain.root_at("log-a", 9) is None
    assert chain.anchored_events("log-a") == [anchor]


def test_size_must_grow_strictly_per_log(w3: Web3, deployment: Deployment) -> None:
    chain = Web3Chain(w3, deployment, ANCHORER.key)
    chain.anchor("log-b", 5, ROOT)
    with pytest.raises(ChainError, match=r"SizeMustGrow\(5, 5\)"):
        chain.anchor("log-b", 5, b"\x22" * 32)
    with pytest.raises(ChainError, match=r"SizeMustGrow\(5, 4\)"):
        chain.anchor("log-b", 4, b"\x22" * 32)
    with pytest.raises(ChainError, match="ZeroRoot"):
        chain.anchor("log-b", 6, bytes(32))
    assert chain.root_at("log-b", 5) == ROOT  # the first anchor stands
    chain.anchor("log-other", 1, ROOT)  # sizes are per log


def test_only_granted_anchorers_may_anchor(w3: Web3, deployment: Deployment) -> None:
    with pytest.raises(ChainError, match="NotAnchorer"):
        Web3Chain(w3, deployment, STRANGER.key).anchor("log-c", 1, ROOT)
    registry = contract(w3, "CertificationRegistry", deployment.contracts["CertificationRegistry"])
    with pytest.raises(ChainError, match="NotAdmin"):
        as_(w3, STRANGER).send(registry.functions.grantAnchorer(STRANGER.address))
    as_(w3, ADMIN).send(registry.functions.grantAnchorer(STRANGER.address))
    Web3Chain(w3, deployment, STRANGER.key).anchor("log-c", 1, ROOT)
    as_(w3, ADMIN).send(registry.functions.revokeAnchorer(STRANGER.address))
    assert registry.functions.isAnchorer(STRANGER.address).call() is False
    with pytest.raises(ChainError, match="NotAnchorer"):
        Web3Chain(w3, deployment, STRANGER.key).anchor("log-c", 2, ROOT)


def test_admin_can_hand_over_the_registry(w3: Web3, deployment: Deployment) -> None:
    registry = contract(w3, "CertificationRegistry", deployment.contracts["CertificationRegistry"])
    with pytest.raises(ChainError, match="NotAdmin"):
        as_(w3, STRANGER).send(registry.functions.transferAdmin(STRANGER.address))
    with pytest.raises(ChainError, match="ZeroAddress"):
        as_(w3, ADMIN).send(registry.functions.transferAdmin("0x" + "00" * 20))
    assert registry.functions.admin().call() == ADMIN.address


# DeviceRegistry


def test_device_registry_is_admin_only_and_revocable(w3: Web3, deployment: Deployment) -> None:
    devices = contract(w3, "DeviceRegistry", deployment.contracts["DeviceRegistry"])
    device_id = Web3.keccak(text="meter-42")
    key, owner = Account.create().address, Account.create().address
    with pytest.raises(ChainError, match="NotAdmin"):
        as_(w3, STRANGER).send(devices.functions.register(device_id, key, owner))
    receipt = as_(w3, ADMIN).send(devices.functions.register(device_id, key, owner))
    (event,) = devices.events.DeviceRegistered().process_receipt(receipt)
    assert (event["args"]["key"], event["args"]["owner"]) == (key, owner)
    assert devices.functions.isActiveKey(device_id, key).call() is True
    with pytest.raises(ChainError, match="AlreadyRegistered"):
        as_(w3, ADMIN).send(devices.functions.register(device_id, key, owner))
    with pytest.raises(ChainError, match="NotAdmin"):
        as_(w3, STRANGER).send(devices.functions.revoke(device_id))
    as_(w3, ADMIN).send(devices.functions.revoke(device_id))
    assert devices.functions.isActiveKey(device_id, key).call() is False
    new_key = Account.create().address
    as_(w3, ADMIN).send(devices.functions.register(device_id, new_key, owner))  # rotation
    assert devices.functions.device(device_id).call()[:2] == [new_key, owner]


# SubscriptionRegistry

REQUESTED, ACCEPTED, REFUSED, REVOKED = 1, 2, 3, 4


def decision_signature(
    w3: Web3, address: str, signer: Any, grant_id: int, provider: str, consumer: str, status: int
) -> tuple[bytes, int]:
    """The deciding user's signature over the domain's EIP-712 typed data (the BAL's own
    `typed_data`, so these tests also hold it to the contract's digest)."""
    timestamp = 1_800_000_000 + grant_id * 10 + status
    decision = Decision(
        grant_id=grant_id,
        status=STATUS_OF[status],
        decided_by="",
        provider=provider,
        consumer=consumer,
        topic="certified/producer1/#",
        timestamp=timestamp,
    )
    typed = typed_data(decision, w3.eth.chain_id, address)
    signed = Account.sign_message(encode_typed_data(full_message=typed), signer.key)
    return bytes(signed.signature), timestamp


STATUS_OF = {number: status for status, number in CONTRACT_STATUS.items()}


def test_grant_decisions_need_the_deciding_users_eip712_signature(
    w3: Web3, deployment: Deployment
) -> None:
    address = deployment.contracts["SubscriptionRegistry"]
    registry = contract(w3, "SubscriptionRegistry", address)
    provider, consumer = Account.create(), Account.create()
    topic = "certified/producer1/#"
    recorder = as_(w3, ANCHORER)

    def record(grant_id: int, signer: Any, status: int, sender: Transactor = recorder) -> Any:
        signature, timestamp = decision_signature(
            w3, address, signer, grant_id, provider.address, consumer.address, status
        )
        return sender.send(
            registry.functions.record(
                grant_id, provider.address, consumer.address, topic, status, timestamp, signature
            )
        )

    # the contract's digest is the standard EIP-712 one
    _, timestamp = decision_signature(
        w3, address, consumer, 1, provider.address, consumer.address, 1
    )
    digest = registry.functions.decisionDigest(
        1, provider.address, consumer.address, topic, REQUESTED, timestamp
    ).call()
    decision = Decision(
        1, STATUS_OF[REQUESTED], "", provider.address, consumer.address, topic, timestamp
    )
    typed = typed_data(decision, w3.eth.chain_id, address)
    signable = encode_typed_data(full_message=typed)
    assert bytes(digest) == keccak(b"\x19" + signable.version + signable.header + signable.body)

    with pytest.raises(ChainError, match="NotRecorder"):
        record(1, consumer, REQUESTED, sender=as_(w3, STRANGER))
    with pytest.raises(ChainError, match="NotEntitled"):
        record(1, provider, REQUESTED)  # a request is the consumer's decision
    receipt = record(1, consumer, REQUESTED)
    (event,) = registry.events.DecisionRecorded().process_receipt(receipt)
    assert event["args"]["decidedBy"] == consumer.address
    assert event["args"]["status"] == REQUESTED
    with pytest.raises(ChainError, match="NotEntitled"):
        record(1, consumer, ACCEPTED)  # only the provider accepts
    with pytest.raises(ChainError, match="BadTransition"):
        record(1, provider, REVOKED)  # nothing accepted yet
    record(1, provider, ACCEPTED)
    record(1, consumer, REVOKED)  # either side revokes
    grant = registry.functions.grant(1).call()
    assert grant[:4] == [provider.address, consumer.address, topic, REVOKED]
    assert grant[5] == consumer.address
    with pytest.raises(ChainError, match="BadTransition"):
        record(1, provider, ACCEPTED)
    record(2, consumer, REQUESTED)
    record(2, provider, REFUSED)
    with pytest.raises(ChainError, match="BadSignature"):
        recorder.send(
            registry.functions.record(
                3, provider.address, consumer.address, topic, REQUESTED, 1, b"\x01" * 64
            )
        )


# persistence


def test_chain_state_survives_reopening_and_loses_only_an_unfinished_block(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chain.sqlite3"
    first = EmbeddedChain(path, chain_id=1337, funded=[ADMIN.address, ANCHORER.address])
    w3 = Web3(first.provider)
    deployment = deploy_contracts(w3, ADMIN.key, [ANCHORER.address])
    Web3Chain(w3, deployment, ANCHORER.key).anchor("log", 3, ROOT)
    height = w3.eth.block_number
    first.backend.db[b"unfinished"] = b"block"  # written, never committed
    first.close()  # as if the process died here

    again = EmbeddedChain(path, chain_id=1337, funded=[ADMIN.address, ANCHORER.address])
    w3 = Web3(again.provider)
    assert w3.eth.block_number == height
    assert b"unfinished" not in again.backend.db
    chain = Web3Chain(w3, deployment, ANCHORER.key)
    assert chain.root_at("log", 3) == ROOT
    chain.anchor("log", 4, ROOT)  # nonces continue from the chain's own count
    assert chain.latest("log")[0] == 4
    again.close()


def test_transactions_are_found_by_index_not_by_walking_the_chain(
    chain: EmbeddedChain, w3: Web3, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Web3Chain(w3, deployment, ANCHORER.key)
    first = registry.anchor("log-index", 1, ROOT)
    for size in range(2, 12):
        registry.anchor("log-index", size, ROOT)
    blocks_read: list[int] = []
    read_block = chain.backend.chain.get_canonical_block_by_number

    def counting(number: int) -> Any:
        blocks_read.append(number)
        return read_block(number)

    monkeypatch.setattr(chain.backend.chain, "get_canonical_block_by_number", counting)
    receipt = w3.eth.get_transaction_receipt(first.tx)
    transaction = w3.eth.get_transaction(first.tx)
    assert receipt["blockNumber"] == transaction["blockNumber"] == first.block
    assert "0x" + bytes(receipt["transactionHash"]).hex() == first.tx
    assert blocks_read == [first.block, first.block]  # one block read per look-up
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt("0x" + "ab" * 32)
