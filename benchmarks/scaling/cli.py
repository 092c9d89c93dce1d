"""How the BAL scales over nodes on one machine (issue 16), against baselines measured in
the same run.

1. raw: `--messages` one-reading PMU payloads (QoS 1) from `--publishers` processes to
   a plain Mosquitto (password file, no TLS, no ACL), counted by a bare paho
   subscriber: what broker and client move here; measured first and last, the best
   kept (the machine may be shared); once more with the persistence of the stack's
   broker (autosave_on_changes, autosave_interval 1), for comparison only;
2. sequencer: `--sequencer-leaves` leaves queued by a follower (`Recorder.save`
   without the lease), then integrated by the leader (`Recorder.sequence`, BATCH
   leaves per transaction), on a throwaway PostgreSQL (fsync on) and on SQLite;
3. for each of `--nodes`: `bal stack up` with that many nodes in a fresh directory
   (PostgreSQL with fsync on, Mosquitto with TLS and Dynamic Security, ganache, the
   nodes sharing the ingest by $share/bal/platone/#), one producer per publisher
   process (the device listener's client id is the login), then
   - ingest: the same payloads as 1 at full speed through the TLS listener, timed until
     every message is stored (messages/s; on a follower its leaf is then queued) and
     until every reading is in bal-main (readings/s: sequenced), each compared with 1;
     with the CPU seconds and bytes written by Mosquitto, each node and PostgreSQL;
   - takeover (on the largest node count of 2 or more): SIGKILL the leader, the
     seconds until another node's /metrics says bal_leader 1 (polled every 50 ms),
     `--takeovers` times, the killed node started again in between; the stack runs
     the default lease (BAL_LEADER_LEASE), reported with the figures;
   - receipt latency: paced publishers at `--rate` msg/s for `--seconds`; per reading,
     the time of the first signed checkpoint of bal-main covering its index minus its
     message's receipt (received_at), both written by the BAL (ARCHITECTURE §5
     promises 1 s), and minus the send time stamped into the payload (`from_publish`:
     adds the broker's queue); the stack gets `--drain` seconds after the last publish
     to catch up, and `kept_up` says whether every reading was covered by then (what
     was not is left out of the percentiles).

Every payload carries one reading, so readings/s and messages/s count the same
payloads at two points of the pipeline. Writes a JSON report (default
benchmarks/results/scale.json) and prints a short table. Needs Mosquitto, the
PostgreSQL server binaries and ganache (npm ci). Run: `.venv/bin/python
benchmarks/scale.py` (about 6 to 7 minutes on 2 cores), or a smoke run (under a
minute): `--nodes 2 --messages 500 --seconds 2 --drain 3 --takeovers 1
--sequencer-leaves 1000`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.scaling.raw import raw_rate
from benchmarks.scaling.runs import ingest, receipt_latency, takeover
from benchmarks.scaling.sequencer import bench_sequencer
from benchmarks.scaling.stack import describe, running_stack
from benchmarks.storage import machine
from platone_bal.config import Settings

LEASE = float(Settings.model_fields["leader_lease"].default)
"""The stack passes no BAL_LEADER_LEASE to its nodes: they run the default."""


def node_list(text: str) -> list[int]:
    numbers = sorted({int(part) for part in text.split(",") if part.strip()})
    if not numbers or numbers[0] < 1:
        raise argparse.ArgumentTypeError("node counts are positive integers, e.g. 1,2,3")
    return numbers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog="See benchmarks/scaling/cli.py for what each stage measures.",
    )
    parser.add_argument("--nodes", type=node_list, default=[1, 2, 3], help="e.g. 1,2,3")
    parser.add_argument("--messages", type=int, default=10_000, help="per ingest run")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument("--rate", type=float, default=1000.0, help="latency: msg/s")
    parser.add_argument("--seconds", type=float, default=30.0, help="latency: duration")
    parser.add_argument(
        "--latency-nodes",
        type=node_list,
        default=None,
        help="node counts whose latency is measured (default: every one of --nodes)",
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=10.0,
        help="latency: seconds after the last publish for the stack to catch up",
    )
    parser.add_argument("--takeovers", type=int, default=3)
    parser.add_argument("--sequencer-leaves", type=int, default=100_000)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-takeover", action="store_true")
    parser.add_argument("--skip-sequencer", action="store_true")
    parser.add_argument("--report", type=Path, default=Path("benchmarks/results/scale.json"))
    return parser.parse_args(argv)


def say(text: str) -> None:
    print(f"  {text}", flush=True)


def bench_nodes(args: argparse.Namespace, nodes: int, takeovers: int) -> dict[str, Any]:
    """One stack of `nodes` nodes: ingest, (`takeovers` > 0) takeover, then latency (last:
    a stack that does not keep up is left with a backlog)."""
    found: dict[str, Any] = {}
    stages: dict[str, float] = {}
    mark = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[name] = now - mark
        mark = now

    with running_stack(nodes, say) as running:
        stage("up")
        found["stack"] = describe(running)
        names = [f"p{nodes}n{n}" for n in range(1, args.publishers + 1)]
        logins = running.add_producers(names)
        stage("producers")
        print(f"  {nodes} node(s): ingest of {args.messages:,} messages ...", flush=True)
        timeout = max(180.0, args.messages / 50)
        found["ingest"] = ingest(running, logins, args.messages, f"b{nodes}n", timeout)
        stage("ingest")
        if takeovers:
            print(f"  {nodes} node(s): {takeovers} takeovers ...", flush=True)
            found["takeover_s"] = takeover(running, takeovers, LEASE)
            stage("takeover")
        latency_nodes = args.latency_nodes or args.nodes
        if not args.skip_latency and nodes in latency_nodes:
            print(f"  {nodes} node(s): {args.rate:.0f} msg/s for {args.seconds:.0f} s ...")
            found["receipt_latency_ms"] = receipt_latency(
                running, logins, args.rate, args.seconds, f"lat{nodes}n", args.drain
            )
            stage("latency")
    stage("down")
    found["stage_s"] = stages
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "scale",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "workload": {
            "payload": "one-reading PMU JSON, unique device per message, QoS 1",
            "messages_per_ingest_run": args.messages,
            "publisher_processes": args.publishers,
            "latency_rate_msgs_per_s": args.rate,
            "latency_seconds": args.seconds,
            "latency_drain_s": args.drain,
            "leader_lease_s": LEASE,
        },
        "errors": {},
    }
    began = time.perf_counter()
    raws: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bal-scale-") as tmp:
        print("1. raw Mosquitto -> paho ...", flush=True)
        raws.append(raw_rate(Path(tmp), args.messages, args.publishers, "first"))
        print("1b. the same, the broker saving after every change (as the stack's) ...")
        autosave = raw_rate(Path(tmp), args.messages, args.publishers, "autosave", autosave=True)
        report["raw_mosquitto_autosave"] = autosave
        if not args.skip_sequencer:
            print(f"2. sequencer: {args.sequencer_leaves:,} queued leaves ...", flush=True)
            report["sequencer"] = bench_sequencer(args.sequencer_leaves)
        takeover_on = max((n for n in args.nodes if n >= 2), default=None)
        report["nodes"] = {}
        for nodes in args.nodes:
            print(f"3. {nodes} node(s): bal stack up ...", flush=True)
            takeovers = 0 if args.skip_takeover or nodes != takeover_on else args.takeovers
            try:
                report["nodes"][str(nodes)] = bench_nodes(args, nodes, takeovers)
            except Exception as error:
                report["errors"][f"{nodes} nodes"] = traceback.format_exc(limit=8)
                print(f"  {nodes} node(s) failed: {error!r}", flush=True)
        print("4. raw Mosquitto -> paho again ...", flush=True)
        raws.append(raw_rate(Path(tmp), args.messages, args.publishers, "last"))
    raw = max(float(r["messages_per_s"]) for r in raws)
    report["raw_mosquitto_msgs_per_s"] = raw
    report["raw_mosquitto_runs"] = raws
    for entry in report["nodes"].values():
        done = entry["ingest"]
        entry["messages_per_s"] = done["messages_per_s"]
        entry["readings_per_s"] = done["readings_per_s"]
        entry["ratio_to_raw"] = done["readings_per_s"] / raw if done["readings_per_s"] else None
        entry["messages_ratio_to_raw"] = (
            done["messages_per_s"] / raw if done["messages_per_s"] else None
        )
        saving = float(report["raw_mosquitto_autosave"]["messages_per_s"])
        entry["messages_ratio_to_raw_autosave"] = (
            done["messages_per_s"] / saving if done["messages_per_s"] else None
        )
        if "takeover_s" in entry:
            report["takeover_s"] = entry.pop("takeover_s")
    latencies = {
        n: e["receipt_latency_ms"] for n, e in report["nodes"].items() if "receipt_latency_ms" in e
    }
    if latencies:
        largest = max(latencies, key=int)
        report["receipt_latency_ms"] = {"nodes": int(largest), **latencies[largest]}
    report["seconds"] = time.perf_counter() - began
    report["machine"]["load_average_1_5_15_at_end"] = list(os.getloadavg())
    return report


def table(report: dict[str, Any]) -> str:
    def figure(value: Any, digits: int = 0) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    lines = [
        f"raw Mosquitto->paho: {figure(report['raw_mosquitto_msgs_per_s'])} msg/s"
        f" ({report['machine']['cpus']} cpus); saving after every change as the stack's"
        f" broker: {figure(report['raw_mosquitto_autosave']['messages_per_s'])} msg/s",
        f"{'nodes':>5} {'msg/s':>8} {'readings/s':>10} {'ratio':>6}"
        f" {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'n':>6} {'kept up':>7}",
    ]
    for nodes, entry in report["nodes"].items():
        latency = entry.get("receipt_latency_ms", {})
        lines.append(
            f"{nodes:>5} {figure(entry['messages_per_s']):>8}"
            f" {figure(entry['readings_per_s']):>10} {figure(entry['ratio_to_raw'], 3):>6}"
            f" {figure(latency.get('p50')):>7} {figure(latency.get('p95')):>7}"
            f" {figure(latency.get('p99')):>7} {figure(latency.get('n')):>6}"
            f" {({True: 'yes', False: 'no'}).get(latency.get('kept_up'), '-'):>7}"
        )
    sequencer = report.get("sequencer")
    if sequencer:
        lines.append(
            f"sequencer (batch {sequencer['workload']['batch']}): postgres"
            f" {figure(sequencer['postgres']['leaves_per_s'])} leaves/s, sqlite"
            f" {figure(sequencer['sqlite']['leaves_per_s'])} leaves/s"
        )
    takeover = report.get("takeover_s")
    if takeover:
        runs = ", ".join(f"{value:.2f}" for value in takeover["runs"])
        lines.append(
            f"takeover ({takeover['nodes']} nodes, lease {takeover['lease_s']:g} s):"
            f" {runs} s, max {takeover['max']:.2f} s"
        )
    for where in report["errors"]:
        lines.append(f"FAILED: {where} (see the report's errors)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"report: {args.report}")
    return 1 if report["errors"] else 0
