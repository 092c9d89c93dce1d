"""Ports to the world outside the store: the chain, the broker's sink and journal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from platone_bal.domain.archive import ArchivedMessage, ArchivedReading, Manifest
from platone_bal.domain.checkpoint import Anchor
from platone_bal.domain.decisions import Decision
from platone_bal.domain.light_nodes import KeyChange
from platone_bal.domain.messages import JournalRecord


class CertifiedSink(Protocol):
    """Where certified readings are republished: the broker in use, at QoS 1."""

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Hand (topic, payload) messages to the broker; return once it has them all,
        raise ConnectionError if it cannot take them."""
        ...


class StreamSink(Protocol):
    """Where certified readings are produced as keyed records: Kafka topics (§8)."""

    def produce(self, records: Sequence[tuple[str, str, bytes]]) -> None:
        """Produce (topic, key, value) records; return once the brokers acknowledged them
        all, raise ConnectionError if they did not (none is then taken as sent)."""
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


class DeviceKeyEvents(Protocol):
    """DeviceRegistry's history, read from any JSON-RPC node: what the registry says
    counts, whoever changed it."""

    def key_changes(self, from_block: int) -> tuple[list[KeyChange], int]:
        """Registrations and revocations in blocks `from_block`.. the latest, in chain
        order, and the latest block read (the next call starts after it)."""
        ...

    def first_block(self) -> int:
        """The block the registry was deployed in: nothing before it matters."""
        ...


class BrokerJournal(Protocol):
    """What the broker wrote down before it acknowledged each publish, in segments; a
    closed segment is complete (no more records will be added to it)."""

    def closed_segments(self) -> list[str]: ...

    def records(self, segment: str) -> list[JournalRecord]: ...

    def discard(self, segment: str) -> None: ...


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


class ArchiveFiles(Protocol):
    """Where archives are kept (BAL_ARCHIVE_DIR): a data file and its manifest per part
    of a day, each written whole or not at all and on disk before the call returns."""

    def data_name(self, log: str, day: date, part: int) -> str:
        """The data file's path under the archive directory."""
        ...

    def write_data(
        self, name: str, readings: Sequence[ArchivedReading], messages: Sequence[ArchivedMessage]
    ) -> tuple[bytes, int]:
        """Write the data file; its (SHA3-256, size in bytes)."""
        ...

    def write_manifest(self, manifest: Manifest) -> None:
        """Write the manifest beside its data file (`manifest.file`)."""
        ...

    def read_data(self, name: str) -> tuple[list[ArchivedReading], list[ArchivedMessage]]:
        """The readings (index order) and messages of a data file; ArchiveError if it
        cannot be read as one."""
        ...

    def read_manifest(self, name: str) -> Manifest:
        """The manifest of data file `name`; ArchiveError if missing or malformed."""
        ...

    def digest(self, name: str) -> bytes | None:
        """SHA3-256 of the data file as it is now (None: no such file)."""
        ...
