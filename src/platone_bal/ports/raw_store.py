"""The audit's port: rows exactly as stored (`bal audit`), apart from the aggregates'
ports in `store` because nothing but the audit reads through it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from platone_bal.ports.records import LeafRow, RawRecord

NodeRun = tuple[int, int, bytes]
"""(level, first index, the hashes of consecutive nodes from it, joined): see
`RawStore.raw_nodes_equal`."""


class RawStore(Protocol):
    """Rows exactly as stored (values of any SQL type, never parsed), for `bal audit`:
    a tampered or malformed row becomes a finding that names it, not a crash."""

    def raw_records(self, log: str, start: int, stop: int) -> list[RawRecord]:
        """Records of `log` (readings, or bal-audit's entries) with start <= index <
        stop, in index order, each with its leaf and the columns stored beside it (a
        range, not a LIMIT: the database reads only that page, whatever its
        statistics say)."""
        ...

    def raw_leaf_rows(self, log: str, start: int, stop: int) -> list[LeafRow] | None:
        """The readings of `log` with start <= index < stop, in index order, each as
        (index, leaf, attrs, members, whole), for `bal audit`'s fast path: the database
        encodes the stored columns so that the audit compares them with the leaf as one
        byte string, without decoding the leaf or reading each column into Python.

        `index`, `leaf` and `attrs` are as stored (as in `raw_records`). `members` is the
        exact RFC 8785 encoding, as bytes, of the object the stored columns say the leaf
        holds besides its attrs and salt: `{"device":…,"log":…,"measurand":…,"owner":…,
        "producer":…,"source":{"format":…,"message":<the message's digest>,"received":…},
        "time":…,"unit":…,"v":1,"value":…}`, each text column as a JSON string (escaped
        as RFC 8785 escapes it) and a NULL as null. `whole` is true (or 1) exactly when the
        reading's message is stored and its stored payload is as long as its recorded
        size (what `check_reading` asks of message id, size and payload length).

        None for the whole page when the database cannot encode it (a value of a type no
        leaf holds, such as a BLOB in a text column of SQLite): the caller then reads it
        with `raw_records`, which reports every value as it is. Guarantees nothing beyond
        the encoding: the caller still checks the leaf, which the rows never vouch for."""
        ...

    def raw_index_from(self, log: str, start: int) -> object | None:
        """The smallest index of a stored record of `log` at or after `start`, if any."""
        ...

    def raw_nodes(self, log: str, level: int, start: int, stop: int) -> list[tuple[object, object]]:
        """(index, hash) of the stored Merkle nodes of `level` with start <= index < stop."""
        ...

    def raw_nodes_equal(self, log: str, runs: Sequence[NodeRun]) -> int:
        """How many of the stored nodes the runs name are BLOBs equal to the bytes given
        for them. A run (level, start, hashes) names the nodes of `level` from `start`
        on, one for each 32 bytes of `hashes` (node start + i for hashes[32 i:32 i +
        32]): the count is the number of nodes named exactly when each one is stored and
        equal. The database compares, in one round trip, so a page's nodes are checked
        without reading them into Python; which node differs is for `raw_nodes` to say."""
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

    def raw_message_ids(self, after: int, limit: int) -> list[int]:
        """The ids of stored messages (in any outcome) above `after`, by id, at most
        `limit`: where pages of `raw_messages` begin, read without their payloads."""
        ...

    def message_reading_index(self, log: str, message_id: int) -> int | None:
        """The smallest index in `log` of a reading of that message (None: it has none);
        read only to name a finding, so it may scan."""
        ...
