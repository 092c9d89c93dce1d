"""Publisher processes: one paho client each, one login each (on the stack's broker the
client id is the login), one-reading PMU payloads whose device ids (`PREFIX-N`) are
unique, QoS 1, at full speed or paced to a rate."""

from __future__ import annotations

import multiprocessing
import queue
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any

from platone_bal.domain.users import producer_topic
from platone_bal.simulate import connect, one_reading_payload

INFLIGHT = 1000
ACK_TIMEOUT = 300.0


@dataclass(frozen=True)
class Login:
    url: str
    username: str
    password: str
    ca_file: Path | None = None


@dataclass(frozen=True)
class Job:
    """`count` payloads of devices PREFIX-0 .. PREFIX-(count-1) under platone/USERNAME/;
    `rate` payloads per second (0: as fast as paho takes them)."""

    login: Login
    prefix: str
    count: int
    rate: float = 0.0
    drain: float = ACK_TIMEOUT
    """Seconds to wait for the acknowledgements after the last publish."""


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` shares differing by at most one."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def _publish(job: Job, ready: Any, go: Any, results: Any) -> None:
    login = job.login
    client = connect(
        login.url, login.username, login.password, inflight=INFLIGHT, ca_file=login.ca_file
    )
    base = producer_topic(login.username)
    devices = [f"{job.prefix}-{n}" for n in range(job.count)]
    prepared = [] if job.rate > 0 else [one_reading_payload(device) for device in devices]
    ready.set()
    go.wait()
    started = time.monotonic()
    lag = 0.0
    infos = []
    for n, device in enumerate(devices):
        if job.rate > 0:
            due = started + n / job.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                lag = max(lag, -delay)
            payload = one_reading_payload(device)  # stamped when sent
        else:
            payload = prepared[n]
        infos.append(client.publish(f"{base}/{device}", payload, qos=1))
    sent = time.monotonic()
    for info in infos:
        remaining = sent + job.drain - time.monotonic()
        if remaining <= 0:
            break
        info.wait_for_publish(remaining)
    acked = time.monotonic()
    client.disconnect()
    client.loop_stop()
    results.put(
        {
            "username": login.username,
            "published": len(infos),
            "acked": sum(1 for info in infos if info.is_published()),
            "publish_s": sent - started,
            "acked_s": acked - started,
            "max_lag_s": lag,
        }
    )


class Publishers:
    """The jobs' processes, connected and waiting; `go()` starts them all at once."""

    def __init__(self, jobs: list[Job]) -> None:
        context = multiprocessing.get_context("spawn")
        self._go = context.Event()
        self._results: Any = context.Queue()
        self.processes: list[BaseProcess] = []
        readies = []
        for job in jobs:
            ready = context.Event()
            process = context.Process(
                target=_publish, args=(job, ready, self._go, self._results), daemon=True
            )
            process.start()
            self.processes.append(process)
            readies.append((ready, process))
        deadline = time.monotonic() + 60
        for ready, process in readies:
            while not ready.wait(0.2):
                if not process.is_alive() or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"a publisher did not connect (exit {process.exitcode})")

    def go(self) -> float:
        """Start publishing; perf_counter() at that moment."""
        started = time.perf_counter()
        self._go.set()
        return started

    def finish(self, timeout: float = ACK_TIMEOUT + 60) -> list[dict[str, Any]]:
        """Each job's tally once every publish was acknowledged (or timed out)."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < len(self.processes) and time.monotonic() < deadline:
            try:
                found.append(self._results.get(timeout=0.5))
            except queue.Empty:
                if not any(process.is_alive() for process in self.processes):
                    break
        for process in self.processes:
            process.join(10)
        return found

    def close(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
        self._results.close()

    def __enter__(self) -> Publishers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def tally(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The jobs' tallies summed: published, acknowledged, the slowest job's times."""
    return {
        "publishers": len(results),
        "published": sum(int(r["published"]) for r in results),
        "acked": sum(int(r["acked"]) for r in results),
        "publish_s": max((float(r["publish_s"]) for r in results), default=0.0),
        "acked_s": max((float(r["acked_s"]) for r in results), default=0.0),
        "max_lag_s": max((float(r["max_lag_s"]) for r in results), default=0.0),
    }
