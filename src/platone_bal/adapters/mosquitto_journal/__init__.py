"""The node's own Mosquitto writes every ingest publish to a journal before it
acknowledges it (the `bal_journal` plugin, `bal_journal.c`); this side builds the
plugin and reads the journal's segments.

Why a journal: Mosquitto 2.0 acknowledges a QoS 1 publish before its state reaches
disk, so a Mosquitto crash can lose messages whose senders already got their PUBACK.
The plugin records each one first; the node ingests whatever of a closed segment it
has not stored (`services.journal_replay`).

The plugin is compiled from its source by the node itself, once per source version,
into the broker's directory: it needs a C compiler and Mosquitto's headers (Debian:
gcc, mosquitto-dev, libmosquitto-dev; `make run` installs them).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from platone_bal.domain.messages import JournalRecord

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("bal_journal.c")
MAGIC = b"BALJ"
HEADER = struct.Struct("<4sQBII")
"""Magic, received (ns since the epoch), QoS, topic length, payload length."""
OPEN, CLOSED = ".open", ".closed"


class JournalPluginError(RuntimeError):
    """The journal plugin could not be built."""


def build_plugin(directory: Path, compiler: str | None = None) -> Path:
    """The plugin's shared object in `directory`, compiled now if this source version
    was not compiled there yet."""
    version = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    target = directory / f"bal_journal-{version}.so"
    if target.exists():
        return target
    cc = compiler or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise JournalPluginError(
            "building Mosquitto's journal plugin needs a C compiler and Mosquitto's headers"
            " (apt-get install gcc mosquitto-dev libmosquitto-dev; `make run` installs them)"
        )
    for stale in directory.glob("bal_journal-*.so"):
        stale.unlink()
    partial = target.with_suffix(".partial")
    built = subprocess.run(
        [cc, "-O2", "-fPIC", "-shared", "-o", str(partial), str(SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        raise JournalPluginError(
            "could not build Mosquitto's journal plugin (are gcc, mosquitto-dev and "
            f"libmosquitto-dev installed?):\n{built.stderr.strip()[-2000:]}"
        )
    os.replace(partial, target)
    return target


class MosquittoJournal:
    """The journal directory as the `BrokerJournal` port: segments, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def prepare(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def close_orphans(self) -> int:
        """Close the segments a Mosquitto that died left open. Only while no Mosquitto
        of this directory runs (the supervisor calls it before each start)."""
        orphans = sorted(self.directory.glob(f"*{OPEN}"))
        for segment in orphans:
            segment.rename(segment.with_suffix(CLOSED))
        return len(orphans)

    def closed_segments(self) -> list[str]:
        return sorted(path.name for path in self.directory.glob(f"*{CLOSED}"))

    def records(self, segment: str) -> list[JournalRecord]:
        return read_segment((self.directory / segment).read_bytes(), segment)

    def discard(self, segment: str) -> None:
        (self.directory / segment).unlink(missing_ok=True)


def read_segment(data: bytes, name: str = "segment") -> list[JournalRecord]:
    """The records of one segment. A record cut short at the end is left out: Mosquitto
    died while writing it, before it sent that publish's acknowledgment."""
    records: list[JournalRecord] = []
    offset = 0
    while offset + HEADER.size <= len(data):
        magic, received_ns, qos, topic_length, payload_length = HEADER.unpack_from(data, offset)
        end = offset + HEADER.size + topic_length + payload_length
        if magic != MAGIC or end > len(data):
            break
        topic_end = offset + HEADER.size + topic_length
        records.append(
            JournalRecord(
                topic=data[offset + HEADER.size : topic_end].decode("utf-8", "replace"),
                payload=data[topic_end:end],
                received=datetime.fromtimestamp(received_ns / 1e9, UTC),
                qos=qos,
            )
        )
        offset = end
    if offset != len(data):
        log.warning("%s: %d bytes after its last whole record ignored", name, len(data) - offset)
    return records
