"""GET /v1/series (buckets computed by the store) and newest-first reading pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.messages import Channel
from platone_bal.services.ingest import Delivery, IngestService
from tests.unit.test_api import add_user

START = datetime(2026, 3, 1, tzinfo=UTC)


def pmu(second: int, value: float) -> bytes:
    """One PMU payload of device pmu1, `second` s after START."""
    moment = START + timedelta(seconds=second)
    return json.dumps(
        {
            "device": "pmu1",
            "timestamp": moment.isoformat(),
            "readings": [{"component": "BUS1", "measurand": "freq", "data": value}],
        }
    ).encode()


def publish_series(store: SqliteStore, producer: str, values: list[tuple[int, float]]) -> None:
    IngestService(store, log_id="bal-main", max_payload_bytes=1 << 20).ingest(
        [
            Delivery(Channel.MQTT, f"platone/{producer}", pmu(second, value), datetime.now(UTC))
            for second, value in values
        ]
    )


def test_series_buckets_are_summarised_by_the_store(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    # bucket 0 (0-59 s): 1, 5, 3 (last by time: 3 at 50 s); bucket 2 (120-179 s): 7
    publish_series(store, "producer1", [(0, 1.0), (50, 3.0), (10, 5.0), (130, 7.0)])
    answer = client.get(
        "/v1/series",
        params={
            "producer": "producer1",
            "device": "pmu1",
            "measurand": "freq",
            "from": "2026-03-01T00:00:00Z",
            "to": "2026-03-01T00:03:00Z",
            "points": 3,
        },
        headers=producer,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["bucket_seconds"] == 60
    assert body["from"] == "2026-03-01T00:00:00.000000Z"
    assert body["buckets"] == [
        {
            "start": "2026-03-01T00:00:00.000000Z",
            "count": 3,
            "min": 1.0,
            "max": 5.0,
            "avg": 3.0,
            "last": 3.0,
        },
        {
            "start": "2026-03-01T00:02:00.000000Z",
            "count": 1,
            "min": 7.0,
            "max": 7.0,
            "avg": 7.0,
            "last": 7.0,
        },
    ]


def test_series_respects_access_and_checks_its_range(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    consumer = add_user(client, admin, "consumer1", "consumer")
    publish_series(store, "producer1", [(0, 1.0)])
    params = {
        "producer": "producer1",
        "device": "pmu1",
        "measurand": "freq",
        "from": "2026-03-01T00:00:00Z",
        "to": "2026-03-02T00:00:00Z",
    }
    assert client.get("/v1/series", params=params, headers=consumer).status_code == 403
    backwards = {**params, "to": "2026-02-01T00:00:00Z"}
    assert client.get("/v1/series", params=backwards, headers=admin).status_code == 400
    too_many = {**params, "points": 2001}
    assert client.get("/v1/series", params=too_many, headers=admin).status_code in (400, 422)
    whole_day = client.get("/v1/series", params=params, headers=admin).json()
    assert [b["count"] for b in whole_day["buckets"]] == [1]


def test_newest_first_pages_walk_back_to_the_oldest(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    publish_series(store, "producer1", [(second, float(second)) for second in range(7)])
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"order": "newest", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/readings", params=params, headers=producer).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == 7
    oldest_first = client.get("/v1/readings", params={"limit": 10}, headers=producer).json()
    assert [item["id"] for item in oldest_first["items"]] == sorted(seen)
    mixed = client.get(
        "/v1/readings", params={"order": "log", "cursor": cursor or "bjoy"}, headers=producer
    )
    assert mixed.status_code == 400  # a newest-first cursor is not one for log order
