"""The real `bal up` under hostile bodies (issue 13's probes on a real process): large
bodies in parallel with and without a token, deep JSON over HTTP and MQTT. The node
stays up and answers, its memory stays bounded, and every refused payload is on
record with its reason."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.bal_process import (
    PRODUCER_PASSWORD,
    BalProcess,
    connect_client,
    wait_until,
)

BIG = 14 * 1024 * 1024
DEEP = 100_000
PARALLEL = 8
RSS_GROWTH_ALLOWED = 150 * 1024 * 1024
"""Bytes the node's peak memory may grow by while 16 bodies of 14 MB arrive: what it
holds is bounded by BAL_MAX_BODY_BYTES per request, not by what is sent (before: 3 GB)."""


def memory(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[BalProcess]:
    running = BalProcess(tmp_path / "data").start()
    try:
        yield running
    finally:
        running.cleanup()


def post_in_parallel(url: str, headers: dict[str, str]) -> list[int]:
    statuses: list[int] = []

    def post() -> None:
        try:
            statuses.append(
                httpx.post(url, content=b"[" * BIG, headers=headers, timeout=60).status_code
            )
        except httpx.HTTPError:
            statuses.append(0)  # the node may close the connection on a refused body

    threads = [threading.Thread(target=post) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return statuses


@pytest.mark.timeout(300)
def test_the_node_stays_up_and_bounded_under_hostile_bodies(node: BalProcess) -> None:
    assert node.pid is not None
    node.add_producer("hostile")
    before = memory(node.pid, "VmRSS")
    verify = f"{node.base}/v1/verify"

    anonymous = post_in_parallel(verify, {})
    assert set(anonymous) <= {401, 0} and 401 in anonymous, anonymous
    signed = post_in_parallel(verify, {**node.admin, "Content-Type": "application/json"})
    assert set(signed) <= {413, 0} and 413 in signed, signed
    deep = httpx.post(verify, content="[" * DEEP + "]" * DEEP, headers=node.admin, timeout=30)
    assert deep.status_code == 400, deep.text

    token = httpx.post(
        f"{node.base}/oauth/token",
        data={"grant_type": "password", "username": "hostile", "password": PRODUCER_PASSWORD},
        timeout=10,
    ).json()["access_token"]
    deep_payload = b'{"device":"d1","timestamp":"2026-01-01T00:00:00Z","readings":' + (
        b"[" * DEEP + b"]" * DEEP + b"}"
    )
    ingest = httpx.post(
        f"{node.base}/v1/ingest",
        content=deep_payload,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert ingest.status_code == 422 and "nests" in ingest.text, ingest.text
    client = connect_client(node.mqtt_port, "hostile", PRODUCER_PASSWORD)
    try:
        client.publish("platone/hostile/deep", deep_payload, qos=1)
        client.wait_published(10)
    finally:
        client.close()
    wait_until(
        lambda: (
            len(node.query("SELECT id FROM rejections WHERE reason LIKE '%nests%levels deep%'"))
            >= 2
        ),
        30,
        "both deep payloads recorded as rejections",
    )

    assert httpx.get(f"{node.base}/healthz", timeout=5).status_code == 200
    assert node.running()
    peak = memory(node.pid, "VmHWM")
    print(f"\nRSS before {before / 2**20:.0f} MiB, peak after {peak / 2**20:.0f} MiB")
    assert peak - before < RSS_GROWTH_ALLOWED
