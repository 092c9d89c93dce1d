"""The Protocols services depend on; adapters implement them (ports and adapters)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from platone_bal.domain.audit import AuditEntry
from platone_bal.domain.checkpoint import Anchor, SignedCheckpoint
from platone_bal.domain.decisions import Decision
from platone_bal.domain.devices import Device
from platone_bal.domain.grants import Grant, Slice
from platone_bal.domain.merkle import NodeReader
from platone_bal.domain.messages import JournalRecord, MessageRecord, SaveResult
from platone_bal.domain.users import Client, Role, User


@dataclass(frozen=True, slots=True)
class ReadingQuery:
    """Filters of GET /v1/readings; `after` is the keyset cursor (last id seen)."""

    producer: str | None = None
    device: str | None = None
    measurand: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = 100
    slices: tuple[Slice, ...] | None = None
    """Only readings inside one of these (what the caller may see); None: no limit."""


@dataclass(frozen=True, slots=True)
class StoredReading:
    id: int
    log: str
    index: int
    producer: str
    owner: str
    device: str
    time: str
    measurand: str
    value: str
    unit: str | None
    attrs: dict[str, Any]
    format: str
    received: str
    message: str


@dataclass(frozen=True, slots=True)
class RejectionQuery:
    producer: str | None = None
    after: int = 0
    limit: int = 100
    newest_first: bool = False
    """The latest `limit` rejections (a dashboard's 'recent'), rather than a page."""


@dataclass(frozen=True, slots=True)
class StoredRejection:
    id: int
    received: str
    channel: str
    topic: str
    producer: str | None
    sender: str | None
    reason: str
    message: str
    size: int
    format: str | None


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A grant decision and, once on chain, its signature and transaction."""

    id: int
    decision: Decision
    signature: str | None = None
    signer: str | None = None
    tx: str | None = None
    block: int | None = None
    chain_id: int | None = None
    contract: str | None = None
    error: str | None = None
    """Why the registry refused to record it, if it did."""


class UserExists(ValueError):
    """The username or wallet is taken."""


class CertifiedSink(Protocol):
    """Where certified readings are republished: the broker in use, at QoS 1."""

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Hand (topic, payload) messages to the broker; return once it has them all,
        raise ConnectionError if it cannot take them."""
        ...


class GrantLedger(Protocol):
    """Where grant decisions are recorded on chain (SubscriptionRegistry)."""

    chain_id: int
    address: str

    def record(self, decision: Decision, signature: bytes) -> tuple[str, int]:
        """(transaction hash, block) once mined; ChainError if refused or unreachable."""
        ...

    def reachable(self) -> bool: ...


class DeviceLedger(Protocol):
    """Device keys on chain (DeviceRegistry); only the registry's admin may change them."""

    def register(self, device_key: bytes, key: str, owner: str) -> str:
        """Register (or, after a revoke, rotate) a device key; the transaction hash."""
        ...

    def revoke(self, device_key: bytes) -> str: ...


class Store(Protocol):
    """The Shared Customer Database: users, raw messages, readings, rejections."""

    def add_user(self, user: User, keystore: str) -> None: ...

    def get_user(self, username: str) -> User | None: ...

    def list_users(self) -> list[User]: ...

    def has_role(self, role: Role) -> bool: ...

    def update_user(
        self, username: str, *, disabled: bool | None = None, password_hash: str | None = None
    ) -> bool:
        """Change a user's status or password hash; False when there is no such user."""
        ...

    def add_grant(self, grant: Grant, decision: Decision) -> Grant:
        """Store a new grant and its request decision in one transaction; returns the
        grant with its id (the decision gets the same id)."""
        ...

    def save_grant(self, grant: Grant, decision: Decision | None = None) -> None:
        """Update a grant and record the decision that changed it, in one transaction."""
        ...

    def user_keystore(self, username: str) -> str | None: ...

    def pending_decisions(self, limit: int) -> list[StoredDecision]:
        """Decisions not yet on chain nor refused by it, oldest first."""
        ...

    def decision_recorded(
        self, decision_id: int, signature: str, signer: str, tx: str, block: int,
        chain_id: int, contract: str,
    ) -> None: ...  # fmt: skip

    def decision_failed(self, decision_id: int, error: str) -> None: ...

    def decisions(self, grant_id: int) -> list[StoredDecision]: ...

    def grant(self, grant_id: int) -> Grant | None: ...

    def grants_of(self, username: str | None) -> list[Grant]:
        """Every grant `username` is a party to (None: every grant), newest first."""
        ...

    def accepted_grants(self, consumer: str | None = None) -> list[Grant]:
        """The accepted grants of `consumer` (None: of everyone); some may have expired."""
        ...

    def append_audit(self, entries: Sequence[AuditEntry]) -> int:
        """Append entries to the bal-audit log in one transaction; its new size."""
        ...

    def audit_entries(
        self,
        *,
        who: str | None = None,
        producer: str | None = None,
        after: int = -1,
        limit: int = 100,
    ) -> list[tuple[int, bytes]]: ...

    def audit_columns(self, after: int, limit: int) -> list[tuple[int, str, str, str, str]]:
        """(index, time, who, action, producers) of bal-audit as stored beside each leaf;
        these columns decide who sees an entry, so `bal audit` compares them too."""
        ...  # fmt: skip

    def add_device(self, device: Device) -> None:
        """Store a new device; UserExists if the producer already has that id."""
        ...

    def get_device(self, producer: str, device_id: str) -> Device | None: ...

    def list_devices(self, producer: str | None = None) -> list[Device]: ...

    def disable_device(self, producer: str, device_id: str) -> bool: ...

    def set_device_chain_tx(self, producer: str, device_id: str, tx: str) -> None: ...

    def add_client(self, client: Client) -> None: ...

    def get_client(self, client_id: str) -> Client | None: ...

    def list_clients(self) -> list[Client]: ...

    def disable_client(self, client_id: str) -> bool: ...

    def revoke_user_tokens(self, username: str, *, clients: bool = False) -> bool:
        """End every token and dashboard session of a user (with `clients`, also its
        platform clients' tokens): raise their token version. False: no such user."""
        ...

    def revoke_client_tokens(self, client_id: str) -> bool:
        """End every token of a platform client. False: no such client."""
        ...

    def save(self, records: Sequence[MessageRecord], log: str) -> SaveResult:
        """Write a batch of messages in one transaction; readings get their log indices.

        A message whose payload the same producer already delivered (MQTT QoS 1
        redelivery) is skipped whole and counted as a duplicate.
        """
        ...

    def recorded(self, messages: Collection[tuple[str | None, str]]) -> set[tuple[str | None, str]]:
        """Which of these (producer, payload digest) pairs have a stored message, in any
        outcome."""
        ...

    def readings(self, query: ReadingQuery) -> list[StoredReading]: ...

    def reading(self, reading_id: int) -> StoredReading | None: ...

    def readings_in_log(self, log: str, start: int, limit: int) -> list[StoredReading]:
        """Readings of `log` from index `start` on, in index order (for audits)."""
        ...

    def leaf_bytes(self, log: str, index: int) -> bytes | None:
        """The certified leaf bytes at `index` of `log`, exactly as hashed."""
        ...

    def leaves(self, log: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        """(index, leaf bytes) of `log` from `start` on, in index order (for audits)."""
        ...

    def rejections(self, query: RejectionQuery) -> list[StoredRejection]: ...

    def device_activity(self, producer: str, since: str) -> dict[str, tuple[str, int]]:
        """device -> (when its latest reading arrived, readings arrived since `since`)."""
        ...

    # the Merkle log

    def log_size(self, log: str) -> int: ...

    def nodes(self, log: str) -> NodeReader:
        """Stored perfect-subtree hashes of a log, for roots and proofs."""
        ...

    def add_checkpoint(self, signed: SignedCheckpoint) -> None: ...

    def egress_position(self, log: str) -> int:
        """Index of the first reading of `log` not yet republished on certified/... topics."""
        ...

    def set_egress_position(self, log: str, position: int) -> None: ...

    def latest_checkpoint(self, log: str) -> SignedCheckpoint | None: ...

    def checkpoint(self, log: str, size: int) -> SignedCheckpoint | None: ...

    def checkpoints(self, log: str, after: int = 0, limit: int = 100) -> list[SignedCheckpoint]:
        """Checkpoints of `log` with size > `after`, smallest first."""
        ...

    def checkpoint_covering(self, log: str, index: int) -> SignedCheckpoint | None:
        """The checkpoint to prove leaf `index` with: the smallest anchored one that
        covers it, else the newest one (which a later anchor will cover)."""
        ...

    def add_anchor(self, anchor: Anchor) -> None:
        """Record an anchor; recording the same (log, size, chain, contract) twice is a no-op."""
        ...

    def anchor(self, log: str, size: int) -> Anchor | None: ...

    def anchor_by_tx(self, tx: str) -> Anchor | None:
        """The anchor sent in transaction `tx` (0x-prefixed hex, any case)."""
        ...

    def anchor_below(self, log: str, size: int) -> Anchor | None:
        """The largest anchor of `log` smaller than `size` (where the next one's data starts)."""
        ...

    def anchors(
        self, log: str | None = None, after: int = 0, limit: int = 100
    ) -> list[tuple[int, Anchor]]:
        """(row id, anchor) oldest first; `after` is the keyset cursor (last row id seen)."""
        ...

    def latest_anchor(self, log: str) -> Anchor | None: ...

    def latest_anchors(self, log: str, limit: int) -> list[Anchor]:
        """The log's `limit` largest anchors, newest first."""
        ...

    def close(self) -> None: ...

    # `bal audit` reads rows exactly as stored (values of any SQL type, never parsed), so
    # that a tampered or malformed row becomes a finding that names it, not a crash.

    def raw_records(self, log: str, start: int, limit: int) -> list[RawRecord]:
        """Records of `log` (readings, or bal-audit's entries) from index `start` on, in
        index order, each with its leaf and the columns stored beside it."""
        ...

    def raw_nodes(self, log: str, level: int, start: int, stop: int) -> list[tuple[object, object]]:
        """(index, hash) of the stored Merkle nodes of `level` with start <= index < stop."""
        ...

    def raw_checkpoints(
        self, log: str, after: int, limit: int
    ) -> list[tuple[object, object, object, object, object]]:
        """(size, root, time, signature, signer) of checkpoints with size > `after`,
        smallest first."""
        ...

    def raw_anchors(
        self, log: str, after: int, limit: int
    ) -> list[tuple[int, object, object, object, object, object, object, object]]:
        """(row id, size, root, chain id, contract, tx, block, time) of the log's anchors
        with row id > `after`, oldest first."""
        ...

    def raw_messages(self, after: int, limit: int) -> list[tuple[int, object, object, object]]:
        """(id, digest, size, payload) of every stored message with id > `after`, in any
        outcome, by id."""
        ...

    def message_reading_index(self, log: str, message_id: int) -> int | None:
        """The smallest index in `log` of a reading of that message (None: it has none);
        read only to name a finding, so it may scan."""
        ...


class BrokerJournal(Protocol):
    """What the broker wrote down before it acknowledged each publish, in segments; a
    closed segment is complete (no more records will be added to it)."""

    def closed_segments(self) -> list[str]: ...

    def records(self, segment: str) -> list[JournalRecord]: ...

    def discard(self, segment: str) -> None: ...


MAX_ROW_ID = 2**63 - 1
"""The largest id a store holds (signed 64-bit integers, as SQLite and PostgreSQL keep
them): a larger one names no row."""


class StoreUnavailable(RuntimeError):
    """The store cannot be used right now (locked, an I/O error, a full disk): a fault of
    the store, not of the data, so the caller retries later instead of rejecting."""


class ChainError(RuntimeError):
    """The chain refused or could not be reached; the message says why."""


class AnchorChain(Protocol):
    """`CertificationRegistry` on some chain: anchor checkpoints, read them back."""

    @property
    def chain_id(self) -> int: ...

    registry_address: str

    def anchor(self, log: str, size: int, root: bytes) -> Anchor:
        """Send `anchor(logId, size, root)` and wait for it to be mined."""
        ...

    def latest(self, log: str) -> tuple[int, bytes, int]:
        """(size, root, block timestamp) of the log's newest anchor; size 0 when none."""
        ...

    def root_at(self, log: str, size: int) -> bytes | None: ...

    def anchored_events(self, log: str, from_block: int | None = None) -> list[Anchor]:
        """The chain's own record of the log's anchors (`Anchored` events), oldest first."""
        ...

    def transaction_anchors(self, log: str, tx: str) -> list[Anchor] | None:
        """The anchors of `log` that transaction `tx` made, as its receipt shows them
        (`Anchored` events emitted by the registry, the block it was mined in); None
        when the chain has no such mined transaction."""
        ...


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record of a log as stored, for `bal audit`: nothing is converted, so a value
    of the wrong type is reported with its index instead of crashing the audit."""

    index: object
    leaf: object
    """The leaf bytes as hashed (a BLOB, unless someone changed its type)."""
    columns: dict[str, object]
    """What is stored beside the leaf: a reading's fields and its message's digest,
    id, size and stored payload length; an access entry's time, who, action, producers."""
