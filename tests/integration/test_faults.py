"""Fault tests of a real `bal up` process and its own Mosquitto: nothing acknowledged is
lost, nothing is stored twice, whatever the publishers, the node, its broker or the
chain do.

Every scenario publishes unique one-reading PMU payloads (one device id each), records
exactly which ones the broker acknowledged (PUBACK), and then demands that each of those
is stored exactly once (counted by device id straight from SQLite), that `bal audit`
recomputes the whole log, and that the proofs of the first, a middle and the last
reading verify with `bal verify` against the chain.

Each scenario prints one line of counts (`pytest -rA` shows them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from platone_bal.cli import app
from tests.integration.bal_process import (
    BAL,
    PRODUCER_PASSWORD,
    ROOT,
    BalProcess,
    Outcome,
    PublishClient,
    Publisher,
    PublisherProcess,
    Tally,
    device_name,
    outcome,
    pmu_payload,
    process_alive,
    stop_publishers,
    wait_until,
)
from tests.integration.ganache import PASSPHRASE, funded_ganache

pytestmark = pytest.mark.integration

cli = CliRunner()
ANCHOR_INTERVAL = 2.0
STORE_TIMEOUT = 120.0
"""Generous bound for the node to store what the broker acknowledged."""


# fixtures and checks


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BalProcess]:
    """One node for the scenarios that do not hurt it (publisher faults only)."""
    node = BalProcess(tmp_path_factory.mktemp("shared") / "data")
    try:
        node.start()
        yield node
    finally:
        node.cleanup()


@pytest.fixture
def new_node(tmp_path: Path) -> Iterator[Callable[..., BalProcess]]:
    """Make nodes of this test; every one (and its Mosquitto) is cleaned up."""
    made: list[BalProcess] = []

    def make(**env: str) -> BalProcess:
        node = BalProcess(tmp_path / f"data{len(made)}", env=env)
        made.append(node)
        return node

    try:
        yield make
    finally:
        for node in made:
            node.cleanup()


@pytest.fixture
def publisher_processes() -> Iterator[list[PublisherProcess]]:
    started: list[PublisherProcess] = []
    try:
        yield started
    finally:
        for publisher in started:
            publisher.kill()


_TEST_STARTED = [time.monotonic()]


@pytest.fixture(autouse=True)
def _clock_and_publishers() -> Iterator[None]:
    """Time each test's report lines; stop its in-thread publishers whatever happens."""
    _TEST_STARTED[0] = time.monotonic()
    try:
        yield
    finally:
        stop_publishers()


def report(line: str) -> None:
    """One line of this scenario's numbers (shown by `pytest -rA`)."""
    print(f"\n[faults +{time.monotonic() - _TEST_STARTED[0]:5.1f} s] {line}", flush=True)


def assert_stored_once(
    node: BalProcess,
    tallies: list[Tally],
    name: str,
    timeout: float = STORE_TIMEOUT,
) -> Outcome:
    """Wait until every acknowledged message is stored, then demand exactly once."""
    acked: set[str] = set().union(*(tally.acked for tally in tallies))

    def all_stored() -> bool:
        stored: set[str] = set()
        for tally in tallies:
            stored |= set(node.stored_counts(tally.prefix + "-"))
        return acked <= stored

    started = time.monotonic()
    with contextlib.suppress(AssertionError):  # the counts below say what is missing
        wait_until(all_stored, timeout, "acknowledged messages to be stored", 0.25)
    waited = time.monotonic() - started
    result = outcome(node, tallies)
    report(f"{result.line(name)} (waited {waited:.1f} s for the store)")
    assert not result.lost, (
        f"{name}: {len(result.lost)} of {result.acked} acknowledged messages not stored, "
        f"e.g. {result.lost[:10]}"
    )
    assert not result.duplicates, f"{name}: stored more than once: {result.duplicates}"
    assert result.acked > 0, f"{name}: nothing was acknowledged, the test proves nothing"
    return result


def assert_certified(
    node: BalProcess, tallies: list[Tally], workdir: Path, rpc_url: str | None = None
) -> None:
    """`bal audit` recomputes the whole log, and the first, a middle and the last reading
    of these devices are anchored and their proofs pass `bal verify --rpc` (against the
    node's own chain RPC unless told). The commands run in this process (CliRunner)."""
    started = time.monotonic()
    readings = sorted(
        reading for tally in tallies for reading in node.readings_of(tally.prefix + "-")
    )
    assert readings, f"no readings of {[tally.prefix for tally in tallies]}"
    chosen = [readings[0], readings[len(readings) // 2], readings[-1]]
    last_index = max(index for _, index, _ in chosen)
    wait_until(
        lambda: node.anchored_size() > last_index,
        30,
        f"an anchor covering index {last_index} (anchored: {node.anchored_size()})",
        0.1,
    )
    env = {key: value for key, value in node.env.items() if key.startswith("BAL_")}
    audited = cli.invoke(app, ["audit"], env=env)
    assert audited.exit_code == 0, audited.output
    assert "AUDIT OK" in audited.output, audited.output
    for reading_id, index, device in chosen:
        bundle = node.proof(reading_id)
        assert bundle["anchor"] is not None, f"reading {reading_id} has no anchor: {bundle}"
        path = workdir / f"proof-{reading_id}.json"
        path.write_text(json.dumps(bundle))
        checked = cli.invoke(app, ["verify", str(path), "--rpc", rpc_url or node.rpc_url])
        output = checked.output
        assert checked.exit_code == 0, f"{device} (index {index}):\n{output}"
        assert "VALID" in output and "FAIL" not in output and "SKIP" not in output, output
    report(f"audit and 3 proofs checked in {time.monotonic() - started:.1f} s")


def in_thread(target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# 1. bursts from one client, then it goes away


@pytest.mark.timeout(300)
def test_burst_then_disconnect_or_dropped_socket_or_killed_publisher(
    shared_node: BalProcess, tmp_path: Path, publisher_processes: list[PublisherProcess]
) -> None:
    node = shared_node
    node.add_producer("burst")
    tallies: list[Tally] = []

    # 5,000 back to back (100 in flight); DISCONNECT the moment the last PUBACK is in
    burst = Publisher(node.mqtt_port, "burst", "s1-burst", inflight=100).open()
    burst.when_acked(5000, burst.client.client.disconnect)
    burst.publish(5000)
    burst.wait_all_acked(STORE_TIMEOUT)
    burst.disconnect()
    tallies.append(burst.tally())
    assert len(tallies[-1].acked) == 5000
    assert_stored_once(node, tallies[-1:], "1a burst 5000, DISCONNECT after the last PUBACK")

    # 2,000 written to the socket at once; DISCONNECT as soon as 1,000 PUBACKs are in.
    # The rest were sent before the DISCONNECT, but the client closes with PUBACKs
    # unread, so its kernel resets the connection and the broker may never read them:
    # only the acknowledged ones are owed.
    hasty = Publisher(node.mqtt_port, "burst", "s1-hasty", inflight=0).open()
    hasty.when_acked(1000, hasty.client.client.disconnect)
    hasty.publish(2000)
    wait_until(lambda: not hasty.client.connected.is_set(), 60, "the DISCONNECT", 0.01)
    hasty.disconnect()
    tallies.append(hasty.tally())
    assert_stored_once(node, tallies[-1:], "1b burst 2000, DISCONNECT after 1000 PUBACKs")

    # the TCP socket closed (socket().close()) after 1,000 PUBACKs, no DISCONNECT
    dropped = Publisher(node.mqtt_port, "burst", "s1-dropped", inflight=0).open()
    dropped.when_acked(1000, dropped.close_socket)
    dropped.publish(3000)
    wait_until(lambda: dropped.acks >= 1000, 60, "1000 PUBACKs", 0.01)
    dropped.drop_socket()
    tallies.append(dropped.tally())
    assert len(tallies[-1].acked) < 3000, "the socket was to be dropped mid-burst"
    assert_stored_once(node, tallies[-1:], "1c burst 3000, socket closed mid-burst")

    # the publishing process killed (-9) mid-burst
    killed = PublisherProcess.start(tmp_path, node.mqtt_port, "burst", "s1-killed", count=4000)
    publisher_processes.append(killed)
    wait_until(lambda: killed.acked_count() >= 1000, 60, "1000 PUBACKs of the process", 0.005)
    killed.kill()
    tallies.append(killed.tally())
    assert len(tallies[-1].acked) < 4000, "the publisher was to be killed mid-burst"
    assert_stored_once(node, tallies[-1:], "1d burst 4000, publisher killed -9 mid-burst")

    assert_stored_once(node, tallies, "1 all")
    assert_certified(node, tallies, tmp_path)


# 2. a connection per message


@pytest.mark.timeout(300)
def test_a_connection_per_message(shared_node: BalProcess, tmp_path: Path) -> None:
    node = shared_node
    node.add_producer("oneshot")
    tally = Tally("s2-oneshot")
    for number in range(300):
        device = device_name(tally.prefix, number)
        client = PublishClient(node.mqtt_port, "oneshot", PRODUCER_PASSWORD).open()
        info = client.publish(f"platone/oneshot/{number}", pmu_payload(device), qos=1)
        tally.sent.append(device)
        client.wait_published(10)
        if info.is_published():
            tally.acked.add(device)
        client.close()
    assert len(tally.acked) == 300
    assert_stored_once(node, [tally], "2 a connection per message, 300")
    assert_certified(node, [tally], tmp_path)


# 3. a persistent session whose socket drops mid-burst, resumed later


@pytest.mark.timeout(300)
def test_persistent_session_resumed_later_resends_what_was_not_acked(
    shared_node: BalProcess, tmp_path: Path
) -> None:
    node = shared_node
    node.add_producer("sessions")
    publisher = Publisher(
        node.mqtt_port,
        "sessions",
        "s3-session",
        client_id="faults-persistent-1",
        clean_session=False,
        inflight=0,
    ).open()
    publisher.when_acked(1000, publisher.close_socket)
    publisher.publish(3000)
    wait_until(lambda: publisher.acks >= 1000, 60, "1000 PUBACKs", 0.01)
    publisher.drop_socket()
    before = publisher.tally()
    assert len(before.acked) < 3000, "the socket was to be dropped mid-burst"
    time.sleep(2)  # the session waits on the broker; later the client comes back

    publisher.resume()  # same client id, clean_session=False; paho resends the unacked
    publisher.wait_all_acked(STORE_TIMEOUT)
    assert publisher.client.connects >= 2
    publisher.disconnect()
    after = publisher.tally()
    report(
        f"3 persistent session: acked before the drop {len(before.acked)}, "
        f"after the resend {len(after.acked)}"
    )
    assert len(after.acked) == 3000
    assert_stored_once(node, [after], "3 persistent session, socket dropped, resumed")
    assert_certified(node, [after], tmp_path)


# 4. QoS 0 while the node is up


@pytest.mark.timeout(300)
def test_qos0_burst_while_the_node_is_up_is_all_stored(
    shared_node: BalProcess, tmp_path: Path
) -> None:
    node = shared_node
    node.add_producer("qoszero")
    publisher = Publisher(node.mqtt_port, "qoszero", "s4-qos0", qos=0, inflight=0).open()
    publisher.publish(2000)
    publisher.wait_all_acked(60)  # QoS 0: "published" once written to the socket
    publisher.disconnect()
    sent = publisher.tally()
    everything = Tally(sent.prefix, sent.sent, set(sent.sent))  # nothing may be missing
    assert len(everything.acked) == 2000
    assert_stored_once(node, [everything], "4 QoS 0 burst 2000 (all expected)", timeout=60)
    assert_certified(node, [everything], tmp_path)


# 5. kill -9 of the node right after the PUBACKs


@pytest.mark.timeout(300)
def test_node_killed_right_after_pubacks_loses_nothing(
    new_node: Callable[..., BalProcess], tmp_path: Path
) -> None:
    node = new_node().start()
    node.add_producer("victim")
    publisher = Publisher(node.mqtt_port, "victim", "s5-kill", inflight=100).open()
    mosquitto, pid = node.mosquitto_pid(), node.pid
    assert mosquitto is not None and pid is not None
    killed_at: list[float] = []
    publisher.when_acked(
        5000, lambda: (os.kill(pid, signal.SIGKILL), killed_at.append(time.monotonic()))
    )
    publisher.publish(5000)
    publisher.wait_all_acked(STORE_TIMEOUT)
    node.kill()  # reaps it
    stored_at_kill = len(node.stored_counts("s5-kill-"))
    publisher.drop_socket()
    tally = publisher.tally()
    assert len(tally.acked) == 5000

    # its Mosquitto got the parent-death signal: it saves and exits
    wait_until(lambda: not process_alive(mosquitto), 10, "the orphaned Mosquitto to exit", 0.02)
    orphan_lived = time.monotonic() - killed_at[0]
    assert node.mosquitto_pid() is None

    node.start()
    assert node.mosquitto_pid() not in (None, mosquitto)
    result = assert_stored_once(node, [tally], "5 node kill -9 after 5000 PUBACKs")
    report(
        f"5: stored when killed {stored_at_kill}, after restart {result.stored}; "
        f"orphaned Mosquitto exited {orphan_lived:.2f} s after the kill"
    )
    assert_certified(node, [tally], tmp_path)


# 6. SIGTERM under a flood


@pytest.mark.timeout(300)
def test_sigterm_under_a_flood_exits_in_grace_and_loses_nothing(
    new_node: Callable[..., BalProcess],
    tmp_path: Path,
    publisher_processes: list[PublisherProcess],
) -> None:
    grace = 10.0
    node = new_node(BAL_SHUTDOWN_GRACE=str(grace)).start()
    for number in range(3):  # a login each: a second connection of a login takes it over
        node.add_producer(f"flood{number}")
    for number in range(3):
        publisher_processes.append(
            PublisherProcess.start(
                tmp_path,
                node.mqtt_port,
                f"flood{number}",
                f"s6-flood{number}",
                seconds=120,
                reconnect=True,
                backlog=300,
            )
        )
    wait_until(
        lambda: all(p.acked_count() >= 500 for p in publisher_processes),
        60,
        "every publisher flooding",
    )
    mosquitto = node.mosquitto_pid()
    assert mosquitto is not None
    mosquitto_gone: list[float] = []

    def watch_mosquitto() -> None:
        while process_alive(mosquitto):
            time.sleep(0.02)
        mosquitto_gone.append(time.monotonic())

    watcher = in_thread(watch_mosquitto)
    node.sigterm()
    signalled = time.monotonic()
    try:
        code = node.wait(grace + 5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the node did not exit within {grace + 5:.0f} s of SIGTERM")
    took = time.monotonic() - signalled
    watcher.join(5)
    report(
        f"6: SIGTERM under a flood of 3 publishers: exit {code} after {took:.1f} s "
        f"(its Mosquitto gone after {mosquitto_gone[0] - signalled:.1f} s)"
    )
    assert code == 0, node.log_tail()
    assert "BAL stopped." in node.log_tail()
    assert node.mosquitto_pid() is None

    time.sleep(1)  # the publishers keep trying while the node is down
    node.start()
    floods = [p.acked_count() for p in publisher_processes]
    wait_until(
        lambda: all(
            p.acked_count() > n + 200 for p, n in zip(publisher_processes, floods, strict=True)
        ),
        60,
        "the publishers flooding the restarted node",
    )
    for publisher in publisher_processes:
        publisher.terminate()
    tallies = [publisher.tally() for publisher in publisher_processes]
    assert_stored_once(node, tallies, "6 SIGTERM under a flood, restart")
    assert_certified(node, tallies, tmp_path)


# 7. Mosquitto killed -9 under load


@pytest.mark.timeout(300)
def test_mosquitto_killed_under_load_is_restarted_and_loses_nothing(
    new_node: Callable[..., BalProcess], tmp_path: Path
) -> None:
    node = new_node().start()
    node.add_producer("steady")
    publisher = Publisher(node.mqtt_port, "steady", "s7-load", inflight=100).open()
    total = 10_000

    def publish_all() -> None:
        while publisher.next_number < total and not publisher.stopped.is_set():
            publisher.publish(min(100, total - publisher.next_number))
            publisher.wait_backlog(1000)

    worker = in_thread(publish_all)
    try:
        wait_until(lambda: len(publisher.tally().acked) >= 3000, 60, "3000 PUBACKs", 0.01)
        mosquitto = node.mosquitto_pid()
        assert mosquitto is not None
        acked_at_kill = len(publisher.tally().acked)
        os.kill(mosquitto, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(
            lambda: node.mosquitto_pid() not in (None, mosquitto), 15, "Mosquitto restarted", 0.02
        )
        restarted = time.monotonic() - killed_at
        worker.join(STORE_TIMEOUT)
        assert not worker.is_alive()
        publisher.wait_all_acked(STORE_TIMEOUT)
    finally:
        publisher.stop()
    publisher.disconnect()
    tally = publisher.tally()
    report(
        f"7: Mosquitto killed after {acked_at_kill} PUBACKs, back after {restarted:.2f} s; "
        f"publisher connected {publisher.client.connects} times"
    )
    assert publisher.client.connects >= 2
    assert len(tally.acked) == total
    assert_stored_once(node, [tally], "7 Mosquitto kill -9 under load, 10000")
    assert_certified(node, [tally], tmp_path)


def publish_to_a_stalled_node_then_kill_mosquitto(
    node: BalProcess, publisher: Publisher, count: int, observe: Callable[[], object]
) -> object:
    """SIGSTOP the node (it reads and acknowledges nothing), publish `count` messages
    until all are PUBACKed, SIGKILL its Mosquitto, let the node go on; returns once a new
    Mosquitto runs, with what `observe` saw just before the kill."""
    assert node.pid is not None
    os.kill(node.pid, signal.SIGSTOP)
    try:
        publisher.publish(count)
        publisher.wait_all_acked(60)
        publisher.disconnect()
        observed = observe()
        mosquitto = node.mosquitto_pid()
        assert mosquitto is not None
        os.kill(mosquitto, signal.SIGKILL)
        wait_until(lambda: not process_alive(mosquitto), 10, "Mosquitto to die", 0.02)
    finally:
        os.kill(node.pid, signal.SIGCONT)
    wait_until(lambda: node.mosquitto_pid() not in (None, mosquitto), 15, "Mosquitto back")
    return observed


@pytest.mark.timeout(300)
def test_mosquitto_killed_while_the_node_lags_loses_nothing(
    new_node: Callable[..., BalProcess], tmp_path: Path
) -> None:
    """The node stalls (SIGSTOP: it reads nothing, acks nothing, as under a long pause),
    devices get 500 PUBACKs, Mosquitto dies. Mosquitto saves a message only when it is
    queued, not when it goes into the node's in-flight window: the window (Receive
    Maximum 100) is small enough to sit in the node's socket, and the rest is queued and
    saved. With a window of 10,000 this lost 463 of 500."""
    node = new_node().start()
    node.add_producer("stalled")
    database = node.mosquitto_dir / "mosquitto.db"
    saved_before = database.stat().st_mtime_ns if database.exists() else None
    publisher = Publisher(node.mqtt_port, "stalled", "s7b-stall").open()
    saved_after = publish_to_a_stalled_node_then_kill_mosquitto(
        node, publisher, 500, lambda: database.stat().st_mtime_ns if database.exists() else None
    )
    tally = publisher.tally()
    report(
        f"7b: 500 PUBACKed while the node was stopped; mosquitto.db rewritten meanwhile: "
        f"{saved_after != saved_before}"
    )
    assert len(tally.acked) == 500
    assert_stored_once(node, [tally], "7b Mosquitto kill -9 while the node lags", timeout=10)
    assert_certified(node, [tally], tmp_path)


@pytest.mark.timeout(300)
def test_mosquitto_killed_before_it_ever_saved_loses_nothing_thanks_to_its_journal(
    new_node: Callable[..., BalProcess], tmp_path: Path
) -> None:
    """As 7b, but Mosquitto never saves on its own (autosave after 10^9 changes), so
    everything it acknowledged and queued for the stalled node is gone from its state
    when it dies: only the journal its plugin wrote before each PUBACK has it. Without
    the journal this loses 400 or more of 500."""
    node = new_node(BAL_MOSQUITTO_AUTOSAVE="1000000000").start()
    node.add_producer("unsaved")
    publisher = Publisher(node.mqtt_port, "unsaved", "s7c-unsaved").open()
    publish_to_a_stalled_node_then_kill_mosquitto(node, publisher, 500, lambda: None)
    tally = publisher.tally()
    assert len(tally.acked) == 500
    assert_stored_once(node, [tally], "7c Mosquitto kill -9, never saved, node stalled")
    replayed = node.metric("bal_journal_replayed_total")
    report(f"7c: {replayed:.0f} of 500 came from the journal")
    assert replayed >= 300, "the journal, not Mosquitto's state, must have carried these"
    assert_certified(node, [tally], tmp_path)


# 8. the node restarted while publishers go on


@pytest.mark.timeout(300)
def test_node_restarted_while_publishers_go_on(
    new_node: Callable[..., BalProcess], tmp_path: Path
) -> None:
    node = new_node().start()
    publishers = []
    for number in range(2):  # a login each: a second connection of a login takes it over
        node.add_producer(f"steady{number}")
        publishers.append(
            Publisher(node.mqtt_port, f"steady{number}", f"s8-pub{number}", inflight=50).open()
        )
    workers = [
        in_thread(lambda p=p: p.publish_for(120, batch=20, pace=0.002, backlog=500))  # type: ignore[misc]
        for p in publishers
    ]
    try:
        wait_until(lambda: all(len(p.tally().acked) >= 500 for p in publishers), 60, "publishing")
        assert node.stop() == 0, node.log_tail()
        time.sleep(2)  # down for a while: the publishers reconnect in a loop and queue
        node.start()
        before = [len(p.tally().acked) for p in publishers]
        wait_until(
            lambda: all(
                len(p.tally().acked) > n + 500 for p, n in zip(publishers, before, strict=True)
            ),
            60,
            "publishing to the restarted node",
        )
    finally:
        for publisher in publishers:
            publisher.stop()
    for worker in workers:
        worker.join(30)
    for publisher in publishers:
        publisher.wait_all_acked(STORE_TIMEOUT)
        assert publisher.client.connects >= 2
        publisher.disconnect()
    tallies = [publisher.tally() for publisher in publishers]
    assert all(len(tally.acked) == len(tally.sent) for tally in tallies)
    assert_stored_once(node, tallies, "8 node restarted while 2 publishers go on")
    assert_certified(node, tallies, tmp_path)


# 9. a 60 s chain outage


@pytest.mark.timeout(300)
def test_a_minute_without_the_chain_then_anchoring_resumes_at_once(
    new_node: Callable[..., BalProcess], tmp_path: Path
) -> None:
    outage = float(os.environ.get("BAL_CHAIN_OUTAGE_SECONDS", "60"))  # CI: 30
    data_dir = tmp_path / "data0"
    chain = funded_ganache(tmp_path, data_dir)
    try:
        node = new_node(BAL_CHAIN="rpc", BAL_CHAIN_URL=chain.url, BAL_KEY_PASSPHRASE=PASSPHRASE)
        assert node.data_dir == data_dir
        deployed = subprocess.run(
            [str(BAL), "chain", "deploy", "--rpc", chain.url],
            env=node.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        node.start()
        node.add_producer("chainless")

        before = Publisher(node.mqtt_port, "chainless", "s9-before").open()
        before.publish(200)
        before.wait_all_acked(60)
        before.disconnect()
        assert_stored_once(node, [before.tally()], "9 before the outage")
        wait_until(lambda: node.anchored_size() >= node.log_size(), 30, "anchor before outage")
        anchored_before = node.anchored_size()

        # the chain hangs (SIGSTOP: connections open, nothing answers) while publishing goes on
        during = Publisher(node.mqtt_port, "chainless", "s9-during").open()
        assert chain.process is not None
        chain.process.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        worker = in_thread(lambda: during.publish_for(outage, batch=10, pace=0.05))
        worker.join(outage + 30)
        assert not worker.is_alive()
        during.wait_all_acked(60)
        during.disconnect()
        assert_stored_once(node, [during.tally()], "9 during the outage")
        assert node.anchored_size() == anchored_before, "anchored while the chain hung?"
        log_size_in_outage = node.log_size()
        elapsed = time.monotonic() - stopped
        if elapsed < outage:
            time.sleep(outage - elapsed)

        chain.process.send_signal(signal.SIGCONT)
        back = time.monotonic()
        assert chain.answers()
        wait_until(
            lambda: node.anchored_size() > anchored_before,
            ANCHOR_INTERVAL + 30,
            "the first anchor after the outage",
            0.05,
        )
        resumed_after = time.monotonic() - back
        wait_until(
            lambda: node.anchored_size() >= log_size_in_outage,
            ANCHOR_INTERVAL + 30,
            "the outage's readings anchored",
            0.05,
        )
        covered_after = time.monotonic() - back
        report(
            f"9: chain hung {back - stopped:.0f} s; "
            f"anchored {anchored_before} before, first anchor {resumed_after:.2f} s after "
            f"it answered, all {log_size_in_outage} readings anchored after {covered_after:.2f} s"
        )
        assert resumed_after <= ANCHOR_INTERVAL + 5, "anchoring did not resume within an interval"
        tallies = [before.tally(), during.tally()]
        assert_stored_once(node, tallies, "9 all")
        assert_certified(node, tallies, tmp_path, rpc_url=chain.url)
        assert node.stop() == 0
    finally:
        if chain.process is not None:
            chain.process.send_signal(signal.SIGCONT)
        chain.stop()
