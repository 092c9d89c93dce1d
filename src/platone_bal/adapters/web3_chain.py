"""The chain port over web3.py: the same code talks to the embedded EVM and to any node.

`deploy_contracts` puts the three contracts on a chain once and grants the node's
anchorer its roles; the resulting `Deployment` (chain id, addresses, block) is a small
JSON file in the data directory, so a restart finds the same contracts. `Web3Chain`
anchors checkpoints and reads them back, turning reverts into `ChainError`s that name
the contract's custom error (e.g. `SizeMustGrow(12, 10)`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_typing import HexStr
from eth_utils.crypto import keccak
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD
from web3.types import TxReceipt

from platone_bal.adapters.contracts import CONTRACT_NAMES, artifacts
from platone_bal.domain.checkpoint import Anchor, SignedCheckpoint, log_key
from platone_bal.domain.decisions import CONTRACT_STATUS, Decision
from platone_bal.domain.proof import AnchorLookup
from platone_bal.domain.readings import format_time
from platone_bal.ports import ChainError

RECEIPT_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where the contracts live on one chain."""

    chain_id: int
    contracts: dict[str, str]
    block: int
    """Block of the first deployment transaction: event scans start here."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        document = json.loads(text)
        return cls(int(document["chain_id"]), dict(document["contracts"]), int(document["block"]))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(self.to_json())
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> Deployment | None:
        return cls.from_json(path.read_text()) if path.exists() else None


def http_web3(url: str, timeout: float = 10.0) -> Web3:
    return Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))


def revert_reason(error: BaseException) -> str:
    """The contract error a revert carries, decoded against our ABIs when possible."""
    data = _revert_data(error)
    if data is None or len(data) < 4:
        return str(error) or type(error).__name__
    for artifact in artifacts().values():
        for entry in artifact.abi:
            if entry.get("type") != "error":
                continue
            types = [item["type"] for item in entry["inputs"]]
            signature = f"{entry['name']}({','.join(types)})"
            if keccak(text=signature)[:4] == data[:4]:
                values = abi_decode(types, data[4:])
                shown = ", ".join(v.hex() if isinstance(v, bytes) else str(v) for v in values)
                return f"{entry['name']}({shown})"
    if data[:4] == bytes.fromhex("08c379a0"):  # Error(string)
        return str(abi_decode(["string"], data[4:])[0])
    return f"reverted with data 0x{data.hex()}"


def _revert_data(error: BaseException) -> bytes | None:
    """Revert data from a node's error (hex `data`) or eth-tester's (bytes, maybe wrapped)."""
    seen: BaseException | None = error
    while seen is not None:
        for candidate in (getattr(seen, "data", None), *getattr(seen, "args", ())):
            if isinstance(candidate, bytes):
                return candidate
            if isinstance(candidate, str) and candidate.startswith("0x"):
                try:
                    return bytes.fromhex(candidate[2:])
                except ValueError:
                    continue
        seen = seen.__cause__ or seen.__context__
    return None


class Transactor:
    """Signs and sends transactions from one local key, one at a time.

    The nonce comes from the node's pending count before every send, so a restart or
    another process using the key never leaves a gap or a reuse behind.
    """

    _locks: ClassVar[dict[str, threading.Lock]] = {}
    _locks_guard = threading.Lock()

    def __init__(self, w3: Web3, private_key: bytes) -> None:
        self.w3 = w3
        self._account = Account.from_key(private_key)
        self.address = Web3.to_checksum_address(self._account.address)
        with Transactor._locks_guard:
            # one lock per account in this process: two senders (anchorer, decision
            # recorder) must not read the same pending nonce
            self._lock = Transactor._locks.setdefault(self.address, threading.Lock())

    def send(self, call: Any) -> TxReceipt:
        """Send a contract call or constructor; return its receipt or raise ChainError."""
        with self._lock:
            return self._send(call)

    def _send(self, call: Any) -> TxReceipt:
        try:
            transaction = call.build_transaction(
                {
                    "from": self.address,
                    "nonce": self.w3.eth.get_transaction_count(self.address, "pending"),
                    "chainId": self.w3.eth.chain_id,
                }
            )
            signed = self._account.sign_transaction(transaction)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
        except ChainError:
            raise
        except Exception as error:
            raise ChainError(revert_reason(error)) from error
        if receipt["status"] != 1:
            raise ChainError(f"transaction 0x{bytes(receipt['transactionHash']).hex()} reverted")
        return receipt


def deploy_contracts(w3: Web3, admin_key: bytes, grantees: list[str]) -> Deployment:
    """Deploy the three contracts from the admin account and grant `grantees` their roles
    (anchorer on CertificationRegistry, recorder on SubscriptionRegistry)."""
    sender = Transactor(w3, admin_key)
    addresses: dict[str, str] = {}
    first_block: int | None = None
    for name in CONTRACT_NAMES:
        artifact = artifacts()[name]
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = sender.send(factory.constructor())
        addresses[name] = str(receipt["contractAddress"])
        first_block = receipt["blockNumber"] if first_block is None else first_block
    registry = contract(w3, "CertificationRegistry", addresses["CertificationRegistry"])
    subscriptions = contract(w3, "SubscriptionRegistry", addresses["SubscriptionRegistry"])
    for grantee in grantees:
        sender.send(registry.functions.grantAnchorer(grantee))
        sender.send(subscriptions.functions.grantRecorder(grantee))
    assert first_block is not None
    return Deployment(w3.eth.chain_id, addresses, first_block)


def contract(w3: Web3, name: str, address: str) -> Contract:
    """A deployed contract of ours at `address`, with its committed ABI."""
    abi: Any = artifacts()[name].abi
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)


class Web3Chain:
    """Anchors and anchor look-ups on `CertificationRegistry` through any web3 provider."""

    def __init__(self, w3: Web3, deployment: Deployment, anchorer_key: bytes | None = None) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.registry_address = deployment.contracts["CertificationRegistry"]
        self.registry = contract(w3, "CertificationRegistry", self.registry_address)
        self._sender = Transactor(w3, anchorer_key) if anchorer_key else None

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    def check_connection(self) -> None:
        """Raise ChainError unless the node answers with the deployment's chain id."""
        try:
            actual = self.w3.eth.chain_id
        except Exception as error:
            raise ChainError(f"chain unreachable: {error}") from error
        if actual != self.deployment.chain_id:
            raise ChainError(
                f"node reports chain id {actual}, the deployment is on {self.deployment.chain_id}"
            )

    def anchor(self, log: str, size: int, root: bytes) -> Anchor:
        if self._sender is None:
            raise ChainError("this chain connection has no anchorer key")
        receipt = self._sender.send(self.registry.functions.anchor(log_key(log), size, root))
        return self._anchor_from(log, size, root, receipt)

    def latest(self, log: str) -> tuple[int, bytes, int]:
        """(size, root, timestamp) of the log's newest anchor; size 0 when none."""
        try:
            size, root, timestamp = self.registry.functions.latest(log_key(log)).call()
        except Exception as error:
            raise ChainError(f"reading the latest anchor failed: {revert_reason(error)}") from error
        return int(size), bytes(root), int(timestamp)

    def root_at(self, log: str, size: int) -> bytes | None:
        """The root the contract holds for exactly `size`, or None if never anchored."""
        try:
            root, _ = self.registry.functions.rootAt(log_key(log), size).call()
        except Exception as error:
            raise ChainError(f"reading an anchor failed: {revert_reason(error)}") from error
        return None if bytes(root) == bytes(32) else bytes(root)

    def anchored_events(self, log: str, from_block: int | None = None) -> list[Anchor]:
        """Every `Anchored` event of the log, oldest first: the chain's own record."""
        start = self.deployment.block if from_block is None else from_block
        try:
            entries = self.registry.events.Anchored().get_logs(
                from_block=start, argument_filters={"logId": log_key(log)}
            )
            return [
                self._anchor_from(
                    log, int(entry["args"]["size"]), bytes(entry["args"]["root"]), entry
                )
                for entry in entries
            ]
        except Exception as error:
            raise ChainError(f"reading Anchored events failed: {error}") from error

    def transaction_anchors(self, log: str, tx: str) -> list[Anchor] | None:
        """The anchors of `log` that transaction `tx` made, read from its receipt: only
        `Anchored` events the registry itself emitted count (any contract can emit an
        event of that shape). None when the chain has no such mined transaction."""
        try:
            receipt = self.w3.eth.get_transaction_receipt(HexStr(tx))
        except TransactionNotFound:
            return None
        except Exception as error:
            raise ChainError(f"reading transaction {tx} failed: {error}") from error
        wanted = log_key(log)
        registry = self.registry_address.lower()
        return [
            Anchor(
                log,
                int(event["args"]["size"]),
                bytes(event["args"]["root"]),
                self.chain_id,
                self.registry_address,
                "0x" + bytes(receipt["transactionHash"]).hex(),
                int(receipt["blockNumber"]),
                _block_time(int(event["args"]["timestamp"])),
            )
            for event in self.registry.events.Anchored().process_receipt(receipt, errors=DISCARD)
            if str(event["address"]).lower() == registry and bytes(event["args"]["logId"]) == wanted
        ]

    def _anchor_from(self, log: str, size: int, root: bytes, located: Mapping[str, Any]) -> Anchor:
        """An Anchor placed by a receipt or a log entry (both name the tx and its block)."""
        block = self.w3.eth.get_block(located["blockNumber"])
        return Anchor(
            log,
            size,
            root,
            self.chain_id,
            self.registry_address,
            "0x" + bytes(located["transactionHash"]).hex(),
            int(located["blockNumber"]),
            _block_time(int(block["timestamp"])),
        )


class Web3GrantLedger:
    """Grant decisions on `SubscriptionRegistry`, sent by the node's recorder account.

    The recorder only carries the transaction: the contract checks that the signature
    inside is the deciding user's."""

    def __init__(self, w3: Web3, deployment: Deployment, recorder_key: bytes) -> None:
        self.w3 = w3
        self.chain_id = deployment.chain_id
        self.address = deployment.contracts["SubscriptionRegistry"]
        self.registry = contract(w3, "SubscriptionRegistry", self.address)
        self._sender = Transactor(w3, recorder_key)

    def record(self, decision: Decision, signature: bytes) -> tuple[str, int]:
        """Send the decision; (transaction hash, block) once mined, else ChainError."""
        receipt = self._sender.send(
            self.registry.functions.record(
                decision.grant_id,
                Web3.to_checksum_address(decision.provider),
                Web3.to_checksum_address(decision.consumer),
                decision.topic,
                CONTRACT_STATUS[decision.status],
                decision.timestamp,
                signature,
            )
        )
        return "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"])

    def reachable(self) -> bool:
        try:
            return self.w3.eth.chain_id == self.chain_id
        except Exception:
            return False


def _block_time(timestamp: int) -> str:
    return format_time(datetime.fromtimestamp(timestamp, UTC))


def rpc_anchor_lookup(url: str) -> AnchorLookup:
    """Check a bundle's anchor against any Ethereum JSON-RPC endpoint (for `bal verify`)."""
    return web3_anchor_lookup(lambda: http_web3(url), url)


def web3_anchor_lookup(connect: Callable[[], Web3], where: str) -> AnchorLookup:
    """Check a bundle's anchor on the chain `connect` reaches (`where` names it in errors).

    The contract must hold the checkpoint's root for (logId, size), and the named
    transaction must carry the matching `Anchored` event from that contract.
    """

    def lookup(anchor: dict[str, Any], signed: SignedCheckpoint) -> str | None:
        checkpoint = signed.checkpoint
        try:
            w3 = connect()
            chain_id = w3.eth.chain_id
            if chain_id != anchor["chain_id"]:
                return f"{where} is chain {chain_id}; the anchor is on chain {anchor['chain_id']}"
            registry = contract(w3, "CertificationRegistry", anchor["contract"])
            root, _ = registry.functions.rootAt(log_key(checkpoint.log), checkpoint.size).call()
            if bytes(root) == bytes(32):
                return f"the contract holds no root for size {checkpoint.size} of {checkpoint.log}"
            if bytes(root) != checkpoint.root:
                return (
                    f"the contract holds 0x{bytes(root).hex()} for size {checkpoint.size}, "
                    f"the checkpoint says 0x{checkpoint.root.hex()}"
                )
            receipt = w3.eth.get_transaction_receipt(anchor["tx"])
            events = registry.events.Anchored().process_receipt(receipt)
            if not any(
                e["args"]["size"] == checkpoint.size and bytes(e["args"]["root"]) == checkpoint.root
                for e in events
            ):
                return f"transaction {anchor['tx']} did not anchor this checkpoint"
            if receipt["blockNumber"] != anchor["block"]:
                return f"transaction is in block {receipt['blockNumber']}, not {anchor['block']}"
        except Exception as error:
            return f"cannot check the anchor at {where}: {error}"
        return None

    return lookup
