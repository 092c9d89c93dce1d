"""An archive: one day of a log's readings moved out of the live store, with all that
makes them provable from the archive alone, years later, with the operator gone.

The data file holds each reading as it was stored (leaf bytes, index, columns) and each
message the readings came in (raw payload). The manifest beside it names the day, the
file's SHA3-256, the signed checkpoint and the anchor covering the day, and the *cover*:
the hashes of the perfect subtrees that fill every gap between the archived indices,
from leaf 0 to the checkpoint's size. The leaves and the cover rebuild the checkpoint's
root (Trillian's compact ranges), which the signature and the chain vouch for; a
changed byte anywhere gives another root. The cover costs a few dozen hashes per run of
consecutive indices, where an inclusion path per reading would cost a kilobyte each.

A single reading's §6 proof bundle can be rebuilt from the archive too
(`ArchiveTree`), so a consumer handed one archived reading checks it like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from platone_bal.domain.checkpoint import (
    Anchor,
    CheckpointError,
    SignedCheckpoint,
    parse_hash,
)
from platone_bal.domain.merkle import (
    SHA3_256,
    Frontier,
    Node,
    ProofError,
    inclusion_proof,
    perfect_blocks,
)
from platone_bal.domain.proof import build_bundle

ARCHIVE_FORMAT = "platone-bal/archive@1"


class ArchiveError(ValueError):
    """An archive or its manifest is malformed, or does not hold together."""


@dataclass(frozen=True, slots=True)
class ArchivedMessage:
    """A message as the live store kept it: its raw payload and what was recorded."""

    id: int
    received: str
    channel: str
    topic: str
    producer: str | None
    sender: str | None
    digest: str
    size: int
    payload: bytes
    format: str | None
    outcome: str
    readings: int


@dataclass(frozen=True, slots=True)
class ArchivedReading:
    """A reading as the live store kept it: its place, its leaf bytes and the columns
    stored beside them (text exactly as stored: `attrs` is its JSON)."""

    id: int
    index: int
    message_id: int
    leaf: bytes
    log: str
    producer: str
    owner: str
    device: str
    time: str
    measurand: str
    value: str
    unit: str | None
    attrs: str
    format: str
    received: str

    @property
    def day(self) -> str:
        """The measurement's UTC day (leaf times are RFC 3339 UTC: its first 10 chars)."""
        return self.time[:10]

    def raw_values(self, message: ArchivedMessage | None) -> tuple[object, ...]:
        """The columns in the order of `bal audit`'s READING_COLUMNS, with the message's
        digest, id, size and payload length (None when the message is not at hand)."""
        return (
            self.log,
            self.producer,
            self.owner,
            self.device,
            self.time,
            self.measurand,
            self.value,
            self.unit,
            self.attrs,
            self.format,
            self.received,
            message.digest if message else None,
            message.id if message else None,
            message.size if message else None,
            len(message.payload) if message else None,
        )


def cover_keys(indices: Sequence[int], size: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees that fill the gaps between the sorted,
    distinct leaf `indices` of a tree of `size` leaves, left to right."""
    keys: list[tuple[int, int]] = []
    start = 0
    for index in [*indices, size]:
        keys.extend(perfect_blocks(start, index))
        start = index + 1
    return keys


def rebuild_root(size: int, leaf_hashes: Mapping[int, bytes], cover: Sequence[Node]) -> bytes:
    """The root of a tree of `size` leaves from some of its leaf hashes and the cover of
    the rest; ArchiveError unless the two tile [0, size) exactly, in order."""
    frontier = Frontier(SHA3_256)
    blocks = iter(cover)
    for index in [*sorted(leaf_hashes), size]:
        if index > size:
            raise ArchiveError(f"leaf {index} lies beyond the checkpoint's {size} leaves")
        for level, block_index in perfect_blocks(frontier.size, index):
            node = next(blocks, None)
            if node is None or node[:2] != (level, block_index):
                raise ArchiveError(
                    f"the cover lacks the subtree (level {level}, index {block_index})"
                )
            frontier.append_subtree(level, node[2])
        if index < size:
            frontier.append(leaf_hashes[index])
    if next(blocks, None) is not None:
        raise ArchiveError("the cover has subtrees beyond the ones the tree needs")
    return frontier.root()


@dataclass(frozen=True, slots=True)
class Manifest:
    """What travels beside a data file: enough to check it with nothing else."""

    log: str
    day: date
    part: int
    file: str
    """The data file's name, next to the manifest."""
    file_sha3: bytes
    file_bytes: int
    readings: int
    messages: int
    first_index: int
    last_index: int
    checkpoint: SignedCheckpoint
    anchor: Anchor
    cover: tuple[Node, ...]
    created: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": ARCHIVE_FORMAT,
            "hash": "sha3-256",
            "log": self.log,
            "day": self.day.isoformat(),
            "part": self.part,
            "file": self.file,
            "file_sha3": "0x" + self.file_sha3.hex(),
            "file_bytes": self.file_bytes,
            "readings": self.readings,
            "messages": self.messages,
            "first_index": self.first_index,
            "last_index": self.last_index,
            "checkpoint": self.checkpoint.to_json(),
            "anchor": {**self.anchor.bundle_json(), "time": self.anchor.time},
            "cover": [[level, index, "0x" + value.hex()] for level, index, value in self.cover],
            "created": self.created,
        }

    @classmethod
    def from_json(cls, document: Any) -> Manifest:
        """Parse a manifest, refusing anything off its format (ArchiveError)."""
        try:
            return _parse_manifest(document)
        except (CheckpointError, KeyError, TypeError, ValueError) as error:
            if isinstance(error, ArchiveError):
                raise
            raise ArchiveError(f"not a {ARCHIVE_FORMAT} manifest: {error}") from None


def _parse_manifest(document: Any) -> Manifest:
    if not isinstance(document, dict) or document.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"not a {ARCHIVE_FORMAT} manifest")
    if document.get("hash") != "sha3-256":
        raise ArchiveError("only sha3-256 archives are known")
    signed = SignedCheckpoint.from_json(document["checkpoint"])
    anchor = document["anchor"]
    if not isinstance(anchor, dict) or set(anchor) != {
        "chain_id",
        "contract",
        "tx",
        "block",
        "time",
    }:
        raise ArchiveError("anchor must be {chain_id, contract, tx, block, time}")
    cover = tuple(
        (_count(level, "cover level"), _count(index, "cover index"), parse_hash(value))
        for level, index, value in document["cover"]
    )
    checkpoint = signed.checkpoint
    return Manifest(
        log=_text(document["log"], "log"),
        day=date.fromisoformat(_text(document["day"], "day")),
        part=_count(document["part"], "part"),
        file=_text(document["file"], "file"),
        file_sha3=parse_hash(document["file_sha3"]),
        file_bytes=_count(document["file_bytes"], "file_bytes"),
        readings=_count(document["readings"], "readings"),
        messages=_count(document["messages"], "messages"),
        first_index=_count(document["first_index"], "first_index"),
        last_index=_count(document["last_index"], "last_index"),
        checkpoint=signed,
        anchor=Anchor(
            checkpoint.log,
            checkpoint.size,
            checkpoint.root,
            _count(anchor["chain_id"], "anchor chain_id"),
            _text(anchor["contract"], "anchor contract"),
            _text(anchor["tx"], "anchor tx"),
            _count(anchor["block"], "anchor block"),
            _text(anchor["time"], "anchor time"),
        ),
        cover=cover,
        created=_text(document["created"], "created"),
    )


def _count(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ArchiveError(f"{name} must be a non-negative integer")
    return value


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ArchiveError(f"{name} must be a string")
    return value


def make_cover(
    indices: Sequence[int], size: int, nodes: Mapping[tuple[int, int], bytes]
) -> tuple[Node, ...]:
    """The cover of `indices` in a tree of `size` leaves from the stored `nodes`."""
    return tuple((level, index, nodes[level, index]) for level, index in cover_keys(indices, size))


@dataclass
class ArchiveTree:
    """A NodeReader over an archive: its leaf hashes and its cover, every other node
    computed from them (and kept), so inclusion paths can be made for its leaves."""

    leaf_hashes: Mapping[int, bytes]
    cover: Sequence[Node]
    _known: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._known.update({(level, index): value for level, index, value in self.cover})
        self._known.update({(0, index): value for index, value in self.leaf_hashes.items()})

    def node(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._known:
            if level == 0:
                raise ProofError(f"leaf {index} is neither in the archive nor covered")
            self._known[key] = SHA3_256.hash_children(
                self.node(level - 1, 2 * index), self.node(level - 1, 2 * index + 1)
            )
        return self._known[key]


def archive_bundle(
    manifest: Manifest, tree: ArchiveTree, reading: ArchivedReading
) -> dict[str, Any]:
    """The §6 proof bundle of one archived reading, from the archive alone."""
    path = inclusion_proof(SHA3_256, tree, reading.index, manifest.checkpoint.checkpoint.size)
    anchor = manifest.anchor
    return build_bundle(reading.leaf, reading.index, manifest.checkpoint, path, anchor)
