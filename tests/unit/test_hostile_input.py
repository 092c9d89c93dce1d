"""Hostile input against the API and the codecs (issue 13's probes, each a regression
test): deep JSON, large bodies before authentication, rejection amplification, edge
values that were 500s, times a grant could store but not read back."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.api.body_guard import BodyGuard
from platone_bal.codecs import DecodeError, decode
from platone_bal.codecs.json_depth import MAX_DEPTH, JsonTooDeep, check_depth, nesting_depth
from platone_bal.domain.messages import MAX_REASONS
from platone_bal.domain.readings import InvalidReading, format_time, parse_time
from platone_bal.ports import RejectionQuery, StoreUnavailable
from tests.unit.test_api import add_user, publish
from tests.unit.test_dashboard_pages import sign_in

DEEP = 100_000


@pytest.fixture
def high_recursion_limit() -> Iterator[None]:
    """As py_ecc leaves it on import: the C stack overflows before a RecursionError."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(DEEP)
    yield
    sys.setrecursionlimit(before)


def reference_depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((reference_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((reference_depth(item) for item in value.values()), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n'),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values)
def test_nesting_depth_is_the_documents_depth_whatever_its_strings_hold(value: object) -> None:
    text = json.dumps(value)
    assert nesting_depth(text) == reference_depth(value)
    assert nesting_depth(json.dumps(value, ensure_ascii=False).encode()) == reference_depth(value)


def test_deep_json_is_refused_before_parsing(high_recursion_limit: None) -> None:
    with pytest.raises(JsonTooDeep):
        check_depth("[" * DEEP + "]" * DEEP)
    payload = b'{"device": "pmu1", "readings": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    with pytest.raises(DecodeError, match="nests"):
        decode(payload)
    check_depth("[" * MAX_DEPTH + "]" * MAX_DEPTH)  # the limit itself passes


def test_api_bodies_are_not_read_without_a_valid_token(
    client: TestClient, admin: dict[str, str], high_recursion_limit: None
) -> None:
    deep = "[" * DEEP + "]" * DEEP
    anonymous = client.post("/v1/verify", content=deep)
    assert anonymous.status_code == 401
    forged = client.post(
        "/v1/verify", content=deep, headers={"Authorization": "Bearer not.a.token"}
    )
    assert forged.status_code == 401
    signed = client.post(
        "/v1/verify", content=deep, headers={**admin, "Content-Type": "application/json"}
    )
    assert signed.status_code == 400
    assert "nests" in signed.json()["detail"]
    assert client.get("/healthz").status_code == 200


def test_bodies_are_limited_before_they_are_read(client: TestClient, admin: dict[str, str]) -> None:
    big = b'{"proofs": [], "readings": []}' + b" " * (1024 * 1024)
    declared = client.post("/v1/verify", content=big, headers=admin)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        for _ in range(40):
            yield b" " * 32768

    streamed = client.post("/v1/verify", content=chunks(), headers=admin)
    assert streamed.status_code == 413
    fine = client.post("/v1/verify", json={"proofs": [], "readings": []}, headers=admin)
    assert fine.status_code == 422  # read and judged: "give at least one proof or reading"


def test_the_chain_rpc_refuses_large_and_deep_calls(high_recursion_limit: None) -> None:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"read": len(await request.body())})

    rpc = TestClient(
        BodyGuard(Starlette(routes=[Route("/", echo, methods=["POST"])]), max_bytes=1000)
    )
    assert rpc.post("/", content=b"[" + b"1," * 600 + b"1]").status_code == 413
    assert rpc.post("/", content="[" * DEEP + "]" * DEEP).status_code == 413
    assert rpc.post("/", content="[" * 200 + "]" * 200).status_code == 400
    assert rpc.post("/", json={"jsonrpc": "2.0"}).json() == {"read": 17}


def test_one_payload_cannot_multiply_into_rejections(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    long_id = {"device": "m" * 30_000, "timestamp": "2026-11-22T12:00:00Z", "readings": []}
    refused = client.post("/v1/ingest", content=json.dumps(long_id), headers=producer)
    assert refused.status_code == 422
    assert len(refused.text) < 1000
    bad = {
        "device": "pmu1",
        "timestamp": "2026-11-22T12:00:00Z",
        "readings": [{"measurand": "v", "data": "x"}] * 1500,
    }
    answer = client.post(
        "/v1/ingest", content=json.dumps(bad, separators=(",", ":")), headers=producer
    )
    assert answer.status_code == 422
    assert len(answer.content) < 40_000
    rows = store.rejections(RejectionQuery(limit=10_000))
    assert len(rows) == 1 + MAX_REASONS + 1  # the long id's, 100 reasons and their count
    assert rows[-1].reason == f"... and {1500 - MAX_REASONS} more reasons"


def test_fields_longer_than_the_bal_keeps_are_rejected_with_a_short_reason(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    payload = {
        "device": "pmu1",
        "timestamp": "2026-11-22T12:00:00Z",
        "readings": [
            {"measurand": "q" * 5000, "data": 1},
            {"measurand": "v", "data": 2, "unit": "u" * 5000},
            {"measurand": "v", "data": 3, "unit": "kV"},
        ],
    }
    answer = client.post("/v1/ingest", content=json.dumps(payload), headers=producer)
    assert answer.status_code == 202
    body = answer.json()
    assert body["readings"] == 1
    assert [len(reason) < 120 for reason in body["rejections"]] == [True, True]
    assert "measurand of 5000 characters" in body["rejections"][0]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/readings?from=9999-12-31T23:59:59-14:00",
        "/scd/getData?from=9999-12-31T23:59:59-14:00",
        "/bap/getTransactions?from=9999-12-31T23:59:59-14:00",
        "/v1/certifications?from=9999-12-31T23:59:59-14:00",
        "/v1/readings?to=0001-01-01T00:00:00%2B14:00",
    ],
)
def test_times_past_the_calendar_in_utc_are_a_client_error(
    client: TestClient, admin: dict[str, str], path: str
) -> None:
    answer = client.get(path, headers=admin)
    assert 400 <= answer.status_code < 500, answer.text


def test_ids_beyond_64_bits_find_nothing_instead_of_failing(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "consumer1", "consumer")
    browser = TestClient(client.app)
    csrf = sign_in(browser, "consumer1", "pass-consumer1")
    huge = 2**64
    for path in (f"/explorer?reading={huge}", f"/verify?reading={huge}", f"/proofs/{huge}.json"):
        assert browser.get(path).status_code < 500, path
    revoke = browser.post(f"/grants/{huge}/revoke", data={"csrf": csrf}, follow_redirects=False)
    assert revoke.status_code < 500
    assert store.reading(huge) is None and store.grant(-(2**70)) is None


def test_a_grant_from_year_one_is_stored_and_read_back(
    client: TestClient, admin: dict[str, str]
) -> None:
    add_user(client, admin, "producer1", "producer")
    consumer = add_user(client, admin, "consumer1", "consumer")
    asked = client.post(
        "/v1/grants",
        json={
            "producer": "producer1",
            "from": "0001-01-01T00:00:00Z",
            "to": "9999-12-31T00:00:00Z",
        },
        headers=consumer,
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["from"] == "0001-01-01T00:00:00.000000Z"
    listed = client.get("/v1/grants", headers=consumer)
    assert listed.status_code == 200 and len(listed.json()) == 1
    for bad in ("0001-01-01T00:00:00+01:00", "2026-01-01T00:00:00", "9999-12-31T23:59:59-14:00"):
        refused = client.post(
            "/v1/grants", json={"producer": "producer1", "from": bad}, headers=consumer
        )
        assert refused.status_code == 422, bad


@settings(max_examples=500)
@given(st.datetimes(timezones=st.just(UTC)))
def test_every_utc_time_survives_format_and_parse(moment: datetime) -> None:
    assert parse_time(format_time(moment)) == moment


@settings(max_examples=300)
@given(st.datetimes(), st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_parse_time_either_reads_a_time_or_says_why(naive: datetime, minutes: int) -> None:
    text = naive.isoformat() + _offset(timedelta(minutes=minutes))
    try:
        parsed = parse_time(text)
    except InvalidReading:
        return
    assert parse_time(format_time(parsed)) == parsed


def _offset(delta: timedelta) -> str:
    sign = "-" if delta < timedelta(0) else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def test_a_busy_store_answers_503_not_500(
    client: TestClient, admin: dict[str, str], store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(*_: object, **__: object) -> None:
        raise StoreUnavailable("SQLite: database is locked")

    monkeypatch.setattr(store, "readings", locked)
    answer = client.get("/v1/readings", headers=admin)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"


def test_database_files_are_the_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "scd.sqlite3"
    path.touch(mode=0o644)
    store = SqliteStore(path)
    publish(store, "nobody", b"{}")  # writes: the -wal and -shm files exist now
    for file in tmp_path.iterdir():
        assert stat.S_IMODE(os.stat(file).st_mode) == 0o600, file.name
    store.close()


def test_the_node_restores_a_recursion_limit_the_c_stack_holds(
    tmp_path: Path, high_recursion_limit: None
) -> None:
    from platone_bal.app import RECURSION_LIMIT, Node
    from platone_bal.config import Settings

    Node(Settings(data_dir=tmp_path / "bal")).store.close()
    assert sys.getrecursionlimit() == RECURSION_LIMIT
