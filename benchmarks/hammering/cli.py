"""Hammer a running BAL node with a random mix of traffic and check its promises throughout.

Modeled on Certificate Transparency's ct_hammer. For `--seconds`, worker threads pick
weighted random actions:

- burst:        connect, publish 10-500 unique QoS 1 payloads, disconnect at once
                (without waiting for the PUBACKs);
- per_message:  a fresh connection for each payload;
- persistent:   persistent sessions (clean_session=False) that drop their socket
                abruptly mid-burst (no DISCONNECT) and are resumed later by another
                action, when paho sends again, with DUP, what was not acknowledged;
- proof:        the proof bundle of a random stored reading, asked as its producer or
                as the admin, verified offline (leaf hash, inclusion, checkpoint
                signature) and matched against the reading;
- consistency:  the signed checkpoints are collected (each signature verified, one signer,
                one root per size, sizes never shrinking, a later checkpoint never older),
                and a consistency proof between an older and a newer one is verified
                offline against the roots the node signed.

On the node's broker a connection's client id is its login (one session per login), so
the hammer creates its own producers: one per worker, for that worker's bursts and
per-message connections, and one per persistent session, used by that session alone
(also when it is finished at the end). Each publishes under its own platone/NAME/.

Every payload is a one-reading PMU document whose device id (`NAME-N`, NAME its
producer) is unique, and the hammer records which ones the broker acknowledged
(PUBACK). At the end it resumes the persistent sessions until their messages are
acknowledged, waits (bounded) until the node has stored every acknowledged payload, and
compares, across all its producers: each acknowledged payload stored exactly once under
the producer that sent it, nothing stored twice or that was never sent, no invalid
proof, no failed consistency check, no shrinking checkpoint.

By default it starts its own `bal up` in a temporary data dir on free ports (anchoring
every 2 s) and stops it with SIGTERM at the end; `--url`, `--mqtt-url` and
`--admin-password` use a running node instead (with `--data-dir` also its store is read).
Writes a JSON report (default benchmarks/results/hammer.json), prints a one-line summary
and exits 1 on any failure.

Run: `.venv/bin/python benchmarks/hammer.py --seconds 60`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.hammering.api import Apis
from benchmarks.hammering.ledger import compare
from benchmarks.hammering.node import OwnNode, node_metrics, store_counts
from benchmarks.hammering.workers import ACTIONS, DEFAULT_WEIGHTS, Hammer, Options

ROOT = Path(__file__).resolve().parents[2]


def run(options: Options) -> dict[str, Any]:
    own: OwnNode | None = None
    if options.url is None:
        own = OwnNode(options.node_env, options.anchor_interval)
        try:
            own.start()
        except BaseException:
            own.stop(timeout=30)
            print(f"node data and log kept in {own.root}", file=sys.stderr)
            raise
        url, mqtt_url, password = own.url, own.mqtt_url, own.password
        data_dir: Path | None = own.data_dir
    else:
        if options.mqtt_url is None or options.admin_password is None:
            raise SystemExit("--url needs --mqtt-url and --admin-password")
        url, mqtt_url, password = options.url, options.mqtt_url, options.admin_password
        data_dir = options.data_dir
    hammer = Hammer(options, url, mqtt_url, password)
    tally = hammer.tally
    ok = False
    try:
        hammer.setup()
        hammer.hammer()
        hammer.finish_sessions()
        apis = Apis(url, hammer.tokens, tally)
        try:
            drained = hammer.drain(apis)
            hammer.final_checks(apis)
        finally:
            apis.close()
        sent, acked = hammer.ledger.snapshot()
        scraped = node_metrics(url)
        listed = hammer.readings.stored()
        stored = listed
        store: dict[str, Any] | None = None
        if data_dir is not None:
            counts = store_counts(data_dir, hammer.producers)
            stored = counts["readings"]
            if stored != listed:
                differ = sorted(
                    set(stored) ^ set(listed) | {k for k in stored if stored[k] != listed.get(k)}
                )
                tally.fail(
                    "store_mismatch",
                    f"the API lists {sum(listed.values())} readings, the store holds "
                    f"{sum(stored.values())}; e.g. {differ[:10]}",
                    len(differ),
                )
            store = {"messages": counts["messages"], "readings": sum(stored.values())}
        if own is not None:
            code = own.stop()
            if code != 0:
                tally.fail("node_exit", f"bal up exited with {code} after SIGTERM:\n{own.tail()}")
            after = store_counts(own.data_dir, hammer.producers)["readings"]
            if after != stored:
                tally.fail(
                    "store_changed_after_stop",
                    f"{sum(stored.values())} readings before the stop, {sum(after.values())} after",
                )
        messages = compare(sent, acked, stored, tally)
        ok = not any(tally.failures.values())
        node = {
            "own": own is not None,
            "url": url,
            "mqtt_url": mqtt_url,
            "exit_code": own.exit_code if own is not None else None,
            "data_dir": str(data_dir) if data_dir is not None else None,
        }
        return build_report(options, hammer, ok, drained, node, messages, store, scraped)
    finally:
        for session in hammer.all_sessions:
            with contextlib.suppress(Exception):
                session.client.loop_stop()
        if own is not None:
            own.stop()
            if ok and not options.keep:
                own.remove()
            else:
                print(f"node data and log kept in {own.root}", file=sys.stderr)


def build_report(
    options: Options,
    hammer: Hammer,
    ok: bool,
    drained: float,
    node: dict[str, Any],
    messages: dict[str, Any],
    store: dict[str, Any] | None,
    scraped: dict[str, float] | None,
) -> dict[str, Any]:
    counts = hammer.tally.counts
    failures = dict(hammer.tally.failures)
    book = hammer.checks.book
    elapsed = hammer.elapsed or 1.0
    return {
        "benchmark": "hammer",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "ok": ok,
        "seconds": options.seconds,
        "elapsed": round(hammer.elapsed, 3),
        "drain_seconds": round(drained, 3),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
        },
        "node": node,
        "workload": {
            "workers": options.workers,
            "weights": options.weights,
            "burst": [options.burst_min, options.burst_max],
            "seed": options.seed,
            "producers": {
                "per_worker": [account.username for account in hammer.worker_accounts],
                "per_session": [session.login for session in hammer.all_sessions],
            },
            "log": options.log,
        },
        "actions": {kind: counts[f"actions.{kind}"] for kind in ACTIONS},
        "messages": messages,
        "persistent_sessions": {
            "sessions": sum(1 for s in hammer.all_sessions if s.opened),
            "abrupt_disconnects": counts["persistent.abrupt_disconnects"],
            "of_which_tcp_reset": counts["persistent.resets"],
            "resumes": counts["persistent.resumes"],
            "session_present_on_resume": counts["persistent.session_present"],
            "published_offline": counts["persistent.published_offline"],
            "unacked_at_end": counts["persistent.unacked_at_end"],
        },
        "proofs": {
            "verified": counts["proofs.verified"],
            "invalid": failures["proofs_invalid"],
            "anchored": counts["proofs.anchored"],
            "not_yet_certified": counts["proofs.not_yet_certified"],
        },
        "consistency": {
            "ok": counts["consistency.ok"],
            "failed": failures["consistency_failed"],
            "checkpoints_seen": len(book.sizes()),
            "largest_checkpoint": max(book.sizes(), default=0),
            "checkpoint_polls": counts["checkpoints.polls"],
            "checkpoints_refetched": counts["checkpoints.refetched"],
            "shrinks": failures["checkpoint_shrinks"],
            "signer": book.signer,
        },
        "http": {"throttled_429": counts["http.throttled"]},
        "store": store,
        "node_metrics": scraped,
        "rates": {
            "pubacked_per_s": round(messages["pubacked"] / elapsed, 1),
            "sent_per_s": round(messages["sent"] / elapsed, 1),
            "proofs_per_s": round(counts["proofs.verified"] / elapsed, 1),
            "consistency_checks_per_s": round(counts["consistency.ok"] / elapsed, 1),
        },
        "failures": failures,
        "problems": hammer.tally.problems,
    }


def parse_weights(text: str) -> dict[str, int]:
    weights = dict(DEFAULT_WEIGHTS)
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        if name.strip() not in ACTIONS or not value.strip().isdigit():
            raise argparse.ArgumentTypeError(f"{part!r}: use NAME=INT with NAME in {ACTIONS}")
        weights[name.strip()] = int(value)
    if not any(weights.values()):
        raise argparse.ArgumentTypeError("at least one weight must be positive")
    return weights


def parse_env(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("BAL_"):
        raise argparse.ArgumentTypeError(f"{text!r}: use BAL_NAME=VALUE")
    return name, value


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="benchmarks/hammer.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--workers", type=int, default=6, help="worker threads, each with its own producer"
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=0,
        help="persistent sessions, each with its own producer (default: as many as workers, "
        "at least 2)",
    )
    parser.add_argument(
        "--weights",
        type=parse_weights,
        default=dict(DEFAULT_WEIGHTS),
        help="e.g. burst=3,per_message=1,persistent=2,proof=3,consistency=1 (0 disables)",
    )
    parser.add_argument("--burst-min", type=int, default=10)
    parser.add_argument("--burst-max", type=int, default=500)
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=60.0,
        help="most seconds to wait at the end for the node to store what was PUBACKed",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--report", type=Path, default=ROOT / "benchmarks" / "results" / "hammer.json"
    )
    parser.add_argument("--url", help="HTTP API of a running node (else one is started)")
    parser.add_argument("--mqtt-url", help="its MQTT listener, mqtt://host:port")
    parser.add_argument("--admin-password", help="its admin's password")
    parser.add_argument(
        "--data-dir", type=Path, help="its BAL_DATA_DIR, to read its store for exact counts"
    )
    parser.add_argument("--log", default="bal-main", help="the readings' log id")
    parser.add_argument("--anchor-interval", type=float, default=2.0)
    parser.add_argument(
        "--node-env",
        type=parse_env,
        action="append",
        default=[],
        help="BAL_NAME=VALUE for the node this starts (repeatable)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the started node's data dir and log"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.burst_min < args.burst_max:
        parser.error("need 1 <= --burst-min < --burst-max")
    if args.workers < 1:
        parser.error("need at least one worker")
    if args.sessions < 0:
        parser.error("need --sessions >= 0")
    return Options(
        seconds=args.seconds,
        workers=args.workers,
        weights=args.weights,
        burst_min=args.burst_min,
        burst_max=args.burst_max,
        drain_seconds=args.drain_seconds,
        seed=args.seed if args.seed is not None else random.randrange(2**31),
        report=args.report,
        url=args.url,
        mqtt_url=args.mqtt_url,
        admin_password=args.admin_password,
        data_dir=args.data_dir,
        log=args.log,
        anchor_interval=args.anchor_interval,
        node_env=dict(args.node_env),
        keep=args.keep,
        sessions=args.sessions,
    )


def summary(report: dict[str, Any]) -> str:
    messages, failures = report["messages"], report["failures"]
    failed = ", ".join(f"{name}={count}" for name, count in failures.items() if count) or "none"
    return (
        f"hammer {'OK' if report['ok'] else 'FAILED'}: {report['elapsed']:.0f} s, "
        f"{messages['producers']} producers, "
        f"{messages['sent']} sent, {messages['pubacked']} PUBACKed, "
        f"{messages['stored']} stored ({messages['stored_unacked']} without PUBACK), "
        f"{messages['lost']} lost, {messages['duplicated']} duplicated; "
        f"{report['proofs']['verified']} proofs verified, {report['proofs']['invalid']} invalid; "
        f"{report['consistency']['ok']} consistency checks ok, "
        f"{report['consistency']['failed']} failed; failures: {failed}"
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    report = run(options)
    options.report.parent.mkdir(parents=True, exist_ok=True)
    options.report.write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    for problem in report["problems"][:10]:
        print(f"  {problem}", file=sys.stderr)
    return 0 if report["ok"] else 1
