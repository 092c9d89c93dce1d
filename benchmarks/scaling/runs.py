"""What is measured on a running stack: ingest at full speed, receipt latency at a
steady rate, and takeover after the leader is killed."""

from __future__ import annotations

import bisect
import math
import os
import signal
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from benchmarks.scaling.publish import Job, Login, Publishers, split, tally
from benchmarks.scaling.stack import LOG, RunningStack, used

NODE_METRICS = ("bal_ingest_messages_total", "bal_ingest_readings_total")
POLL = 0.05


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def node_counters(running: RunningStack) -> dict[str, dict[str, float]]:
    found = {}
    for number in range(1, running.state.nodes + 1):
        sample = running.metrics(number) or {}
        found[f"node{number}"] = {name: sample.get(name, 0.0) for name in NODE_METRICS}
    return found


def ingest(
    running: RunningStack, logins: list[Login], messages: int, prefix: str, timeout: float
) -> dict[str, Any]:
    """`messages` one-reading payloads at full speed from one process per login: the
    time until every message is stored (acknowledged to the broker: on a follower, its
    leaf queued) and until every reading is in the log (sequenced)."""
    before = running.wait_settled()  # every stored reading logged: counts line up
    counters = node_counters(running)
    jobs = [
        Job(login, f"{prefix}{n}", count)
        for n, (login, count) in enumerate(zip(logins, split(messages, len(logins)), strict=True))
    ]
    stored_s = logged_s = None
    started_usage = running.usage()
    with Publishers(jobs) as group:
        started = group.go()
        deadline = started + timeout
        while time.perf_counter() < deadline:
            now = running.counts()
            elapsed = time.perf_counter() - started
            if stored_s is None and now.messages - before.messages >= messages:
                stored_s = elapsed
            if (
                stored_s is not None
                and now.logged - before.logged >= now.readings - before.readings
            ):
                logged_s = elapsed
                break
            time.sleep(POLL)
        sent = tally(group.finish())
    usage = used(started_usage, running.usage())
    after = running.counts()
    messages_stored = after.messages - before.messages
    readings = after.logged - before.logged
    shares = node_counters(running)
    result: dict[str, Any] = {
        "messages": messages_stored,
        "readings": readings,
        "complete": stored_s is not None and logged_s is not None,
        "stored_s": stored_s,
        "logged_s": logged_s,
        "messages_per_s": messages_stored / stored_s if stored_s else None,
        "readings_per_s": readings / logged_s if logged_s else None,
        "publishers": sent,
        "usage": usage,
        "taken_by_node": {
            name: {metric: shares[name][metric] - counters[name][metric] for metric in NODE_METRICS}
            for name in shares
        },
    }
    return result


def latency_figures(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "p50": 1000 * percentile(seconds, 0.5),
        "p95": 1000 * percentile(seconds, 0.95),
        "p99": 1000 * percentile(seconds, 0.99),
        "max": 1000 * max(seconds),
    }


def receipt_latency(
    running: RunningStack,
    logins: list[Login],
    rate: float,
    seconds: float,
    prefix: str,
    drain: float,
) -> dict[str, Any]:
    """Payloads at a steady `rate` for `seconds`; per reading, the first signed checkpoint
    of the log covering it (its time) minus its message's receipt (received_at), both
    written by the BAL; and minus the time the publisher stamped into the payload when it
    sent it (the same clock), which adds the broker's queue. After the last publish the
    stack gets `drain` seconds to catch up; what is covered by then is measured."""
    running.wait_settled()
    per_login = rate / len(logins)
    count = max(1, round(per_login * seconds))
    jobs = [Job(login, f"{prefix}{n}-", count, per_login, drain) for n, login in enumerate(logins)]
    pattern = f"{prefix}%"
    before = running.usage()
    with Publishers(jobs) as group:
        started = group.go()
        sent = tally(group.finish(seconds + drain + 60))
    deadline = started + seconds + drain
    published = int(sent["published"])

    def measured() -> int:
        row = running.db.execute(
            "SELECT count(*) FROM readings WHERE log = %(log)s AND device LIKE %(pattern)s"
            " AND idx < (SELECT coalesce(max(size), 0) FROM checkpoints WHERE log = %(log)s)",
            {"log": LOG, "pattern": pattern},
        ).fetchone()
        return int(row[0]) if row else 0

    while measured() < published and time.perf_counter() < deadline:
        time.sleep(0.2)
    usage = used(before, running.usage())
    rows = running.db.execute(
        "SELECT r.idx, m.received_at, r.time_at FROM readings r JOIN messages m"
        " ON m.id = r.message_id AND m.received_at = r.message_at"
        " WHERE r.log = %s AND r.device LIKE %s",
        (LOG, pattern),
    ).fetchall()
    checkpoints = running.db.execute(
        "SELECT size, time FROM checkpoints WHERE log = %s ORDER BY size", (LOG,)
    ).fetchall()
    sizes = [int(size) for size, _ in checkpoints]
    times = [datetime.fromisoformat(stamp) for _, stamp in checkpoints]
    from_receipt, from_publish = [], []
    for index, received, stamped in rows:
        first = bisect.bisect_right(sizes, int(index))  # the first checkpoint with size > idx
        if first < len(sizes):
            from_receipt.append((times[first] - received).total_seconds())
            from_publish.append((times[first] - stamped).total_seconds())
    if not from_receipt:
        raise RuntimeError(f"no reading of the steady run was covered by a checkpoint: {sent}")
    span = max(float(sent["publish_s"]), 1e-9)
    return {
        **latency_figures(from_receipt),
        "n": len(from_receipt),
        "within_1s_share": sum(1 for value in from_receipt if value <= 1.0) / len(from_receipt),
        "from_publish": latency_figures(from_publish),
        "kept_up": len(from_receipt) >= published,
        "published": published,
        "not_covered_after_drain": published - len(from_receipt),
        "drain_s": drain,
        "rate_asked_msgs_per_s": rate,
        "rate_sent_msgs_per_s": published / span,
        "seconds": seconds,
        "publishers": sent,
        "usage": usage,
    }


def the_leader(running: RunningStack, timeout: float = 60.0) -> int:
    """The one node that reports bal_leader 1, once exactly one does."""
    deadline = time.monotonic() + timeout
    while True:
        found = running.leaders()
        if len(found) == 1:
            return found[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"not exactly one leader: {found}")
        time.sleep(POLL)


def takeover(running: RunningStack, repeats: int, lease: float) -> dict[str, Any]:
    """SIGKILL the leader; seconds until another node reports bal_leader 1 (its /metrics
    polled every 50 ms); the killed node started again before the next round."""
    nodes = list(range(1, running.state.nodes + 1))
    seconds: list[float] = []
    restarts: list[float] = []
    for _ in range(repeats):
        leader = the_leader(running)
        others = [number for number in nodes if number != leader]
        os.kill(running.state.pids[f"node{leader}"], signal.SIGKILL)
        killed = time.perf_counter()
        deadline = killed + 4 * lease + 30
        while not running.leaders(others):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no node took over from node{leader}")
            time.sleep(POLL)
        seconds.append(time.perf_counter() - killed)
        began = time.perf_counter()
        running.restart(leader)
        restarts.append(time.perf_counter() - began)
    return {
        "runs": seconds,
        "max": max(seconds),
        "lease_s": lease,
        "nodes": running.state.nodes,
        "restart_to_healthy_s": restarts,
    }
