"""Archived readings in `bal audit`: the records of a part that lives only in its archive
file are read from that file, and checked exactly as a live record (its columns against
its leaf, its leaf against the stored leaf hash and the tree), so an audit passes before
an archive, after it and after a restore, and fails the same way on a changed reading
wherever it lies.

A file that is missing, or whose SHA3-256 is not the one listed when it was written,
is a finding at its first index; so is a message of the file whose payload does not
hash to its digest. The pages that touch an archived part are checked in this process
(the overlay is not passed to workers: their pages come back "check it here").
"""

from __future__ import annotations

import bisect
from typing import Any, cast

from platone_bal.domain.leaf import message_digest
from platone_bal.ports import ArchiveFiles, ArchiveRecord, ArchiveStatus, RawRecord, Store
from platone_bal.services.audit.report import Finding


class WithArchives:
    """The store, with the archived parts of `log` read from their files."""

    def __init__(self, store: Store, files: ArchiveFiles, log: str) -> None:
        self._store = store
        self._files = files
        self._log = log
        parts = [a for a in store.archives(log) if a.status is ArchiveStatus.ARCHIVED]
        self._parts = sorted(parts, key=lambda record: record.first_index)
        self._starts = [record.first_index for record in self._parts]
        self._loaded: tuple[str, dict[int, RawRecord]] | None = None
        self.files: set[str] = set()
        """The archive files read (each checked whole)."""
        self.payloads = 0
        """Archived messages whose payloads were rechecked against their digests."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def as_store(self) -> Store:
        """This overlay where a Store is asked for (it answers the rest by delegation)."""
        return cast(Store, self)

    def raw_leaf_rows(self, log: str, start: int, stop: int) -> object:
        if self._touching(log, start, stop):
            return None  # the audit then reads `raw_records`
        return self._store.raw_leaf_rows(log, start, stop)

    def raw_records(self, log: str, start: int, stop: int) -> list[RawRecord]:
        live = self._store.raw_records(log, start, stop)
        parts = self._touching(log, start, stop)
        if not parts:
            return live
        records = {record.index: record for record in live}
        for part in parts:
            for index, record in self._records(part).items():
                if start <= index < stop:
                    records.setdefault(index, record)
        return [records[index] for index in sorted(records, key=_order)]

    def _touching(self, log: str, start: int, stop: int) -> list[ArchiveRecord]:
        if log != self._log or not self._parts:
            return []
        end = bisect.bisect_left(self._starts, stop)
        return [part for part in self._parts[:end] if part.last_index >= start]

    def _records(self, part: ArchiveRecord) -> dict[int, RawRecord]:
        if self._loaded is not None and self._loaded[0] == part.file:
            return self._loaded[1]
        if self._files.digest(part.file) != part.sha3:
            raise Finding(
                f"archive {part.file} ({part.day}) is missing or changed since it was "
                f"written (SHA3-256 listed 0x{part.sha3.hex()})",
                part.first_index,
            )
        readings, messages = self._files.read_data(part.file)
        by_id = {message.id: message for message in messages}
        for message in messages:
            if message_digest(message.payload) != message.digest:
                raise Finding(
                    f"archive {part.file}: message {message.id}'s payload does not hash to "
                    f"its digest {message.digest}",
                    part.first_index,
                )
        records = {
            r.index: RawRecord(r.index, r.leaf, r.raw_values(by_id.get(r.message_id)))
            for r in readings
        }
        if part.file not in self.files:
            self.files.add(part.file)
            self.payloads += len(messages)
        self._loaded = (part.file, records)
        return records


def _order(index: object) -> tuple[int, object]:
    """Indices in order; a malformed stored index (not an int) last, as found."""
    return (0, index) if isinstance(index, int) else (1, 0)
