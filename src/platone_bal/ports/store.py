"""The Shared Customer Database as ports, one per aggregate, and the unit of work.

Services ask for the narrowest port they need (a grant service needs `GrantStore` and
`UserStore`, not the readings). A backend (SQLite, PostgreSQL) implements them all;
`Store` names that whole. What must commit together (a message, its readings and
rejections, and the log nodes their leaves complete) is written through one
`Transaction`, which the shared `LogAppender` and `Recorder` drive, so no backend holds
the log's rules.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from datetime import date
from typing import Any, Protocol

from platone_bal.domain.archive import ArchivedMessage, ArchivedReading
from platone_bal.domain.checkpoint import Anchor, SignedCheckpoint
from platone_bal.domain.decisions import Decision
from platone_bal.domain.devices import Device
from platone_bal.domain.grants import Grant
from platone_bal.domain.merkle import BatchNodeReader, Node
from platone_bal.domain.messages import MessageRecord
from platone_bal.domain.users import Client, Role, User
from platone_bal.ports.raw_store import RawStore
from platone_bal.ports.records import (
    AccessRow,
    ArchiveRecord,
    Fence,
    QueuedLeaf,
    ReadingQuery,
    ReadingRow,
    RejectionQuery,
    SeriesBucket,
    SeriesQuery,
    StoredDecision,
    StoredReading,
    StoredRejection,
    StoredSetPoint,
)

NodeKey = tuple[int, int]
"""(level, index) of a perfect subtree."""


class UserStore(Protocol):
    """People: producers, consumers, admins; their keystores and token versions."""

    def add_user(self, user: User, keystore: str) -> None:
        """UserExists if the username or wallet is taken."""
        ...

    def get_user(self, username: str) -> User | None: ...

    def list_users(self) -> list[User]: ...

    def has_role(self, role: Role) -> bool: ...

    def update_user(
        self, username: str, *, disabled: bool | None = None, password_hash: str | None = None
    ) -> bool:
        """Change a user's status or password hash; False when there is no such user."""
        ...

    def user_keystore(self, username: str) -> str | None: ...

    def revoke_user_tokens(self, username: str, *, clients: bool = False) -> bool:
        """End every token and dashboard session of a user (with `clients`, also its
        platform clients' tokens): raise their token version. False: no such user."""
        ...


class ClientStore(Protocol):
    """Platform clients (OAuth2 client credentials), each acting for one user."""

    def add_client(self, client: Client) -> None: ...

    def get_client(self, client_id: str) -> Client | None: ...

    def list_clients(self) -> list[Client]: ...

    def disable_client(self, client_id: str) -> bool: ...

    def revoke_client_tokens(self, client_id: str) -> bool:
        """End every token of a platform client. False: no such client."""
        ...


class DeviceStore(Protocol):
    """A producer's devices, their logins and registered keys."""

    def add_device(self, device: Device) -> None:
        """Store a new device; UserExists if the producer already has that id."""
        ...

    def get_device(self, producer: str, device_id: str) -> Device | None: ...

    def list_devices(self, producer: str | None = None) -> list[Device]: ...

    def disable_device(self, producer: str, device_id: str) -> bool: ...

    def set_device_chain_tx(
        self, producer: str, device_id: str, tx: str, public_key: str | None = None
    ) -> None:
        """The device's latest DeviceRegistry change; with `public_key`, the new key that
        change registered (a rotation)."""
        ...


class GrantStore(Protocol):
    """Grants and the decisions that changed them, on their way to the chain."""

    def add_grant(self, grant: Grant, decision: Decision) -> Grant:
        """Store a new grant and its request decision in one transaction; returns the
        grant with its id (the decision gets the same id)."""
        ...

    def save_grant(self, grant: Grant, decision: Decision | None = None) -> None:
        """Update a grant and record the decision that changed it, in one transaction."""
        ...

    def grant(self, grant_id: int) -> Grant | None: ...

    def grants_of(self, username: str | None) -> list[Grant]:
        """Every grant `username` is a party to (None: every grant), newest first."""
        ...

    def accepted_grants(self, consumer: str | None = None) -> list[Grant]:
        """The accepted grants of `consumer` (None: of everyone); some may have expired."""
        ...

    def pending_decisions(self, limit: int) -> list[StoredDecision]:
        """Decisions not yet on chain nor refused by it, oldest first."""
        ...

    def decision_recorded(
        self, decision_id: int, signature: str, signer: str, tx: str, block: int,
        chain_id: int, contract: str,
    ) -> None: ...  # fmt: skip

    def decision_failed(self, decision_id: int, error: str) -> None: ...

    def decisions(self, grant_id: int) -> list[StoredDecision]: ...


class ReadingStore(Protocol):
    """Messages as received, the readings certified from them, the rejections."""

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
        """device -> (when its latest reading arrived, readings arrived since the start
        of the hour `since` falls in). Counted per hour as readings are written, so a
        page view reads a few counters instead of scanning the producer's readings."""
        ...

    def series(self, query: SeriesQuery) -> list[SeriesBucket]:
        """The readings of one device and measurand summarised per time bucket by the
        database, oldest bucket first; empty buckets are left out."""
        ...


class LogStore(Protocol):
    """The Merkle logs' stored subtrees, read for roots and proofs."""

    def log_size(self, log: str) -> int: ...

    def queued_leaves(self) -> int:
        """Leaves queued for the sequencer, of every log (how far it is behind)."""
        ...

    def nodes(self, log: str) -> BatchNodeReader:
        """Stored perfect-subtree hashes of a log, for roots and proofs; its
        `nodes_at(keys)` reads many in one round trip."""
        ...


class CheckpointStore(Protocol):
    """Signed checkpoints and the anchors that put them on chain."""

    def add_checkpoint(self, signed: SignedCheckpoint, fence: Fence | None = None) -> None:
        """Store a signed checkpoint (once per size); with a `fence`, only while its
        lease holds (LeaseLost otherwise), as for every leader's write below."""
        ...

    def latest_checkpoint(self, log: str) -> SignedCheckpoint | None: ...

    def checkpoint(self, log: str, size: int) -> SignedCheckpoint | None: ...

    def checkpoints(self, log: str, after: int = 0, limit: int = 100) -> list[SignedCheckpoint]:
        """Checkpoints of `log` with size > `after`, smallest first."""
        ...

    def latest_checkpoints(self, log: str, limit: int) -> list[SignedCheckpoint]:
        """The log's `limit` largest checkpoints, newest first."""
        ...

    def checkpoint_covering(self, log: str, index: int) -> SignedCheckpoint | None:
        """The checkpoint to prove leaf `index` with: the smallest anchored one that
        covers it, else the newest one (which a later anchor will cover)."""
        ...

    def add_anchor(self, anchor: Anchor, fence: Fence | None = None) -> None:
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


class AccessLogStore(Protocol):
    """The access audit log bal-audit, searchable by who acted and whose data it was."""

    def audit_entries(
        self,
        *,
        who: str | None = None,
        producer: str | None = None,
        after: int = -1,
        limit: int = 100,
    ) -> list[tuple[int, bytes]]:
        """(index, leaf bytes) of bal-audit after `after`, by `who` (the user itself or
        `who via CLIENT`) and/or concerning `producer` (either matches when both given)."""
        ...

    def audit_columns(self, after: int, limit: int) -> list[tuple[int, str, str, str, str]]:
        """(index, time, who, action, producers) of bal-audit as stored beside each leaf,
        producers space-separated; these columns decide who sees an entry, so `bal audit`
        compares them too."""
        ...


class PositionStore(Protocol):
    """How far each log has been republished (egress)."""

    def egress_position(self, log: str) -> int:
        """Index of the first reading of `log` not yet republished on certified/... topics."""
        ...

    def set_egress_position(self, log: str, position: int, fence: Fence | None = None) -> None: ...


class TreeWriter(Protocol):
    """A log's tree inside a transaction: what `LogAppender` reads and writes."""

    def lock_log(self, log: str) -> int:
        """The log's size, its head locked until the transaction ends (PostgreSQL:
        `SELECT ... FOR UPDATE` on the head row), so two writers never take one index."""
        ...

    def nodes_at(self, log: str, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored nodes among `keys`, in one round trip."""
        ...

    def add_nodes(self, log: str, nodes: Sequence[Node]) -> None: ...

    def set_log_size(self, log: str, size: int) -> None:
        """Move the head; only after `lock_log` in the same transaction."""
        ...


class Transaction(TreeWriter, Protocol):
    """One unit of work: everything written through it commits together or not at all."""

    def add_messages(self, records: Sequence[MessageRecord]) -> list[int | None]:
        """Insert the messages; each one's id, or None for a payload its producer
        already delivered (stored once, however often it is delivered)."""
        ...

    def add_readings(self, rows: Sequence[ReadingRow]) -> None: ...

    def add_rejections(self, rows: Sequence[tuple[int, str | None, str]]) -> None:
        """(message id, producer, reason) rows."""
        ...

    def add_access_entries(self, rows: Sequence[AccessRow]) -> None: ...

    def queue_leaves(self, leaves: Sequence[QueuedLeaf]) -> None:
        """Write leaves down for the sequencer, in order."""
        ...

    def take_queued(self, limit: int) -> list[QueuedLeaf]:
        """Up to `limit` queued leaves, oldest first, out of the queue when this
        transaction commits (the sequencer gives them their indices in it)."""
        ...

    def check_lease(self, name: str, holder: str, token: int) -> None:
        """Raise `LeaseLost` unless `holder` holds lease `name` with fencing `token`
        now; the lease then cannot change hands before this transaction ends."""
        ...

    def add_setpoint(self, index: int, leaf: dict[str, Any], leaf_bytes: bytes) -> int:
        """A set point logged at `index` of bal-setpoints (status issued); its id."""
        ...

    def add_setpoint_answer(
        self, index: int, setpoint_id: int, leaf: dict[str, Any], leaf_bytes: bytes
    ) -> None:
        """A Light Node's answer logged at `index`; the set point takes its status."""
        ...


class SetPointStore(Protocol):
    """Set points of bal-setpoints and their answers (ARCHITECTURE §8)."""

    def setpoint(self, setpoint_id: int) -> StoredSetPoint | None: ...

    def setpoint_at(self, index: int) -> StoredSetPoint | None:
        """The set point logged at `index` of bal-setpoints (None: no set point there)."""
        ...

    def setpoints(
        self,
        producer: str | None = None,
        after: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[StoredSetPoint]:
        """By id, those with id > `after`; one producer's, or everyone's (None). With
        `newest_first`, the latest `limit` of them, newest first (a page's list)."""
        ...

    def setpoints_to_deliver(self, below: int, limit: int = 100) -> list[StoredSetPoint]:
        """Issued set points logged below index `below` (covered by a signed
        checkpoint), oldest first: what delivery publishes next."""
        ...

    def mark_delivered(self, setpoint_id: int, when: str, fence: Fence | None = None) -> None:
        """Issued -> delivered (a set point answered meanwhile keeps its answer)."""
        ...

    def expire_setpoints(self, now: str) -> int:
        """Issued or delivered set points whose end is before `now` become expired; how
        many did."""
        ...


class NodeStateStore(Protocol):
    """What the nodes of one BAL must agree on, kept where they all find it (§8: nodes
    share no directory): the encrypted keystores of the log's and the chain's keys and
    of the token and session secrets, the contracts' addresses."""

    def node_value(self, name: str) -> str | None: ...

    def put_node_value(self, name: str, value: str) -> str:
        """Keep `value` under `name` unless another node put one there first; the value
        kept, so two nodes starting at once end up with the same one."""
        ...


class LeaseStore(Protocol):
    """Leases that make one node at a time the leader of a job (the sequencer, the
    checkpointers, ...), timed by the database's clock, never the nodes' clocks.

    Each change of holder raises the lease's fencing token; a write that must come from
    the leader checks its token in its own transaction (`Transaction.check_lease`), so a
    node that lost the lease while stalled can never write after the next leader began.
    """

    def take_lease(self, name: str, holder: str, seconds: float) -> int | None:
        """Hold lease `name` for `seconds` from now: renewed if `holder` holds it, taken
        if it is free or has expired (its token then grows by one). The token held, or
        None while another holder's lease runs; StoreUnavailable when the store cannot
        tell now (unreachable, or the row held by a leader's write for too long)."""
        ...

    def release_lease(self, name: str, holder: str) -> None:
        """Let lease `name` go at once if `holder` holds it (a clean stop): the next
        node need not wait for it to expire."""
        ...


class ArchiveStore(Protocol):
    """The hot window: which days of a log are live, which are archived (files listed
    with the SHA3-256 they must keep), and the moves between the two, each one
    transaction fenced by the archiver's lease."""

    def prepare_days(self, ahead: int) -> None:
        """Make room for the readings of today and the next `ahead` days before they
        come (PostgreSQL: their day partitions; SQLite: nothing to make)."""
        ...

    def live_days(self, log: str) -> list[tuple[date, int]]:
        """(measurement day, live readings) of `log`, oldest first; kept on write, so
        reading it scans no reading."""
        ...

    def day_readings(self, log: str, day: date, below: int) -> list[ArchivedReading]:
        """The live readings of `log` measured on `day` (UTC) with index < `below`, in
        index order, as stored."""
        ...

    def day_messages(self, log: str, day: date, below: int) -> list[ArchivedMessage]:
        """The stored messages of the readings `day_readings` gives, by id."""
        ...

    def archives(self, log: str | None = None) -> list[ArchiveRecord]:
        """Every archive file of `log` (None: of every log), by day then part."""
        ...

    def archive_day(self, record: ArchiveRecord, indices: Sequence[int], fence: Fence) -> None:
        """The readings at `indices` (of `record.day`) leave the live store, with every
        message of theirs no live reading or rejection still needs (a payload archived
        stays claimed: delivered again, it is not stored twice); `record` is listed
        (a restored part: marked archived again). One transaction: ArchiveConflict, and
        nothing changed, unless exactly those readings were live."""
        ...

    def restore_archive(
        self,
        record: ArchiveRecord,
        readings: Sequence[ArchivedReading],
        messages: Sequence[ArchivedMessage],
        when: str,
        fence: Fence,
    ) -> int:
        """Put an archive's readings and messages back as they were stored (ids,
        indices, bytes), those already live left alone, and mark it restored at `when`;
        how many readings came back. One transaction."""
        ...


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        ...


class Store(
    UserStore,
    ClientStore,
    DeviceStore,
    GrantStore,
    ReadingStore,
    LogStore,
    CheckpointStore,
    AccessLogStore,
    PositionStore,
    RawStore,
    SetPointStore,
    NodeStateStore,
    LeaseStore,
    ArchiveStore,
    UnitOfWork,
    Protocol,
):
    """The Shared Customer Database: every aggregate of one backend."""

    def close(self) -> None: ...
