"""The broker's journal, read and replayed: what the store lacks is ingested once, what
it has is skipped, a segment is deleted only after its records are committed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from platone_bal.adapters.mosquitto_plugins import PluginBuildError, build_plugin
from platone_bal.adapters.mosquitto_plugins.journal import HEADER, MAGIC, read_segment
from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.leaf import message_digest
from platone_bal.domain.messages import Channel, JournalRecord
from platone_bal.domain.users import User
from platone_bal.ports import ReadingQuery, RejectionQuery
from platone_bal.services.ingest import Delivery, IngestService
from platone_bal.services.journal_replay import JournalReplay, ReplayIncomplete
from tests.conftest import SAMPLE_PMU, SAMPLE_XML

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def encode(topic: str, payload: bytes, qos: int = 1, received: datetime = NOW) -> bytes:
    """One record as bal_journal.c writes it."""
    raw_topic = topic.encode()
    nanoseconds = int(received.timestamp()) * 1_000_000_000
    header = HEADER.pack(MAGIC, nanoseconds, qos, len(raw_topic), len(payload))
    return header + raw_topic + payload


class FakeJournal:
    def __init__(self, segments: dict[str, list[JournalRecord]]) -> None:
        self.segments = segments

    def closed_segments(self) -> list[str]:
        return sorted(self.segments)

    def records(self, segment: str) -> list[JournalRecord]:
        return self.segments[segment]

    def discard(self, segment: str) -> None:
        del self.segments[segment]


def record(topic: str, payload: bytes) -> JournalRecord:
    return JournalRecord(topic, payload, NOW, 1)


@pytest.fixture
def ingest(store: SqliteStore) -> IngestService:
    service = IngestService(store, log_id="bal-main", max_payload_bytes=4096)
    service.start()
    yield service  # type: ignore[misc]
    service.stop(5)


def test_records_read_back_as_written_and_a_torn_tail_is_left_out() -> None:
    data = encode("platone/p1/m1", b"<xml/>") + encode("platone/p1", b"", qos=0)
    torn = encode("platone/p1", b"cut short")[:-3]
    records = read_segment(data + torn)
    assert [(r.topic, r.payload, r.qos, r.received) for r in records] == [
        ("platone/p1/m1", b"<xml/>", 1, NOW),
        ("platone/p1", b"", 0, NOW),
    ]
    assert read_segment(data + b"\0" * 40) == records  # zeros after a power loss


def test_only_what_the_store_lacks_is_replayed_and_the_segment_then_goes(
    store: SqliteStore, ingest: IngestService, producer: User
) -> None:
    ingest.ingest([Delivery(Channel.MQTT, "platone/producer1", SAMPLE_XML, NOW)])
    journal = FakeJournal(
        {
            "1-000000.closed": [
                record("platone/producer1", SAMPLE_XML),  # delivered: skipped
                record("platone/producer1/pmu1", SAMPLE_PMU),  # lost by the broker
                record("platone/producer1", b"not a reading"),  # lost, and bad
            ]
        }
    )
    replay = JournalReplay(journal, store, ingest)
    assert replay.step() == 2
    assert journal.segments == {}
    assert [r.device for r in store.readings(ReadingQuery())] == [
        "11111111",
        "11111111",
        "pmu1",
        "pmu1",
    ]
    rejected = store.rejections(RejectionQuery(limit=10))
    assert [r.message for r in rejected] == [message_digest(b"not a reading")]
    # the same segment again (e.g. replayed twice around a crash): nothing is added
    journal.segments["1-000000.closed"] = [record("platone/producer1/pmu1", SAMPLE_PMU)]
    assert replay.step() == 0
    assert len(store.readings(ReadingQuery())) == 4


def test_a_segment_is_kept_until_ingest_has_committed_its_records(
    store: SqliteStore, producer: User
) -> None:
    stalled = IngestService(store, log_id="bal-main", max_payload_bytes=4096)  # not started
    journal = FakeJournal({"1-000000.closed": [record("platone/producer1", SAMPLE_PMU)]})
    replay = JournalReplay(journal, store, stalled, commit_timeout=0.3)
    with pytest.raises(ReplayIncomplete):
        replay.step()
    assert list(journal.segments) == ["1-000000.closed"]
    stalled.start()
    try:
        assert stalled.flush(5)  # the first attempt's delivery is committed now
        assert replay.step() == 0
        assert journal.segments == {}
    finally:
        stalled.stop(5)
    assert len(store.readings(ReadingQuery())) == 2


def test_the_plugin_build_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(PluginBuildError, match="mosquitto-dev"):
        build_plugin("bal_journal", tmp_path, compiler="false")
    assert list(tmp_path.iterdir()) == []
