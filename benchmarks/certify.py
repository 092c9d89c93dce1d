"""Certification costs, each against a plain baseline measured in the same run.

The workload is the simulated fleet (150 meters, 50 PMUs; one payload per device per
second), decoded once up front, in windows of `--window` rounds (the anchor interval).

1. append: leaf hashes appended to the Merkle log with their perfect-subtree nodes
   written to SQLite (what the sequencer adds to every write), against the same number
   of plain rows written the same way; then the whole store write (messages, readings,
   leaves, nodes) window by window, with a signed checkpoint after each window;
2. chain: the same readings anchored two ways on one embedded EVM, in this run:
   fleet-wide (one `anchor` of the log's checkpoint per window, our design) and
   per-device-window (one `anchor` of each device's window root per device per window,
   the field trials' design), counting the transactions and gas the chain recorded;
3. proofs: bundles generated from the store, against reading the same readings;
4. verification: bundles verified offline (leaf, inclusion, signature), against the
   EIP-191 signer recovery alone; and a sample with the anchor checked on the chain;
5. audit: `bal audit` of the whole log with anchors checked on chain, against reading
   every reading and leaf page by page.

Writes a JSON report (default benchmarks/results/certify.json). Run: `make bench` or
`.venv/bin/python benchmarks/certify.py --readings 20000 --meters 30 --pmus 10`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account
from web3 import Web3

from platone_bal.adapters.embedded_chain import EmbeddedChain
from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.adapters.wallets import Wallets
from platone_bal.adapters.web3_chain import (
    Transactor,
    Web3Chain,
    contract,
    deploy_contracts,
    web3_anchor_lookup,
)
from platone_bal.domain.checkpoint import SignedCheckpoint, log_key, recover_signer
from platone_bal.domain.merkle import SHA3_256, Frontier, merkle_root
from platone_bal.domain.messages import Channel, MessageRecord
from platone_bal.domain.proof import AnchorLookup, verify_bundle
from platone_bal.domain.users import Role
from platone_bal.services.audit import audit_log
from platone_bal.services.audit.rows import PAGE
from platone_bal.services.certification import proof_bundle
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.ingest import Delivery, IngestService
from platone_bal.services.recorder import Recorder
from platone_bal.services.users import UserService
from platone_bal.simulate import Fleet

LOG = "bal-main"
PRODUCER = ("producer1", "secret-pass-1")


@dataclass
class Window:
    """One anchor interval of the workload: its payloads, decoded and ready to store."""

    records: list[MessageRecord]
    readings: int
    device_leaf_hashes: dict[str, list[bytes]] = field(default_factory=dict)


@contextmanager
def timed(into: dict[str, float], key: str = "seconds") -> Iterator[None]:
    started = time.perf_counter()
    yield
    into[key] = into.get(key, 0.0) + time.perf_counter() - started


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.inf


def decode_workload(
    ingest: IngestService, fleet: Fleet, readings: int, rounds_per_window: int
) -> list[Window]:
    """Decode simulated rounds (one per second) until `readings` readings, in windows."""
    start = datetime.now(UTC) - timedelta(hours=2)
    windows: list[Window] = []
    total, second = 0, 0
    while total < readings:
        if second % rounds_per_window == 0:
            windows.append(Window([], 0))
        window = windows[-1]
        moment = start + timedelta(seconds=second)
        second += 1
        for topic, payload in fleet.round(moment):
            record = ingest.record(Delivery(Channel.MQTT, topic, payload, moment))
            assert not record.rejections, record.rejections
            window.records.append(record)
            for item in record.readings:
                device = window.device_leaf_hashes.setdefault(item.leaf["device"], [])
                device.append(SHA3_256.hash_leaf(item.leaf_bytes))
            window.readings += len(record.readings)
            total += len(record.readings)
    return windows


def bench_append(windows: list[Window], workdir: Path, batch: int) -> dict[str, Any]:
    """Leaves into the Merkle log's node table vs the same count of plain rows."""
    hashes = [h for w in windows for hs in w.device_leaf_hashes.values() for h in hs]
    database = sqlite3.connect(workdir / "append.sqlite3", isolation_level=None)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA synchronous=FULL")
    database.execute(
        "CREATE TABLE nodes (log TEXT NOT NULL, level INTEGER NOT NULL, idx INTEGER NOT NULL,"
        " hash BLOB NOT NULL, PRIMARY KEY (log, level, idx)) WITHOUT ROWID"
    )
    database.execute(
        "CREATE TABLE plain (log TEXT NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,"
        " PRIMARY KEY (log, idx)) WITHOUT ROWID"
    )
    baseline: dict[str, float] = {}
    with timed(baseline):
        for offset in range(0, len(hashes), batch):
            rows = [(LOG, offset + i, h) for i, h in enumerate(hashes[offset : offset + batch])]
            database.execute("BEGIN")
            database.executemany("INSERT INTO plain VALUES (?, ?, ?)", rows)
            database.execute("COMMIT")
    in_memory: dict[str, float] = {}
    with timed(in_memory):
        frontier = Frontier(SHA3_256)
        for leaf_hash in hashes:
            frontier.append(leaf_hash)
    stored: dict[str, float] = {}
    node_count = 0
    with timed(stored):
        frontier = Frontier(SHA3_256)
        for offset in range(0, len(hashes), batch):
            nodes = [(LOG, *node) for node in frontier.extend(hashes[offset : offset + batch])]
            node_count += len(nodes)
            database.execute("BEGIN")
            database.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?)", nodes)
            database.execute("COMMIT")
    database.close()
    leaves = len(hashes)
    return {
        "leaves": leaves,
        "batch": batch,
        "baseline_plain_rows_per_s": rate(leaves, baseline["seconds"]),
        "frontier_in_memory_leaves_per_s": rate(leaves, in_memory["seconds"]),
        "stored_leaves_per_s": rate(leaves, stored["seconds"]),
        "stored_node_rows": node_count,
        "ratio_stored_leaves_vs_plain_rows": baseline["seconds"] / stored["seconds"],
    }


def store_windows(
    store: SqliteStore, checkpointer: Checkpointer, windows: list[Window]
) -> dict[str, Any]:
    """The full store write of each window, then its signed checkpoint."""
    writes: dict[str, float] = {}
    signing: dict[str, float] = {}
    messages = readings = 0
    recorder = Recorder(store)
    for window in windows:
        with timed(writes):
            result = recorder.save(window.records, LOG)
        messages += result.messages
        readings += result.readings
        with timed(signing):
            checkpointer.checkpoint_now()
    return {
        "messages": messages,
        "readings": readings,
        "readings_per_s": rate(readings, writes["seconds"]),
        "checkpoints_signed": len(windows),
        "checkpoint_ms": 1000 * signing["seconds"] / len(windows),
    }


def chain_design(
    w3: Web3, sender: Transactor, registry_address: str, anchors: list[tuple[bytes, int, bytes]]
) -> dict[str, Any]:
    """Send every (logId, size, root) anchor; count what the chain recorded."""
    registry = contract(w3, "CertificationRegistry", registry_address)
    first_block = w3.eth.block_number + 1
    gas = 0
    started = time.perf_counter()
    for log_id, size, root in anchors:
        gas += sender.send(registry.functions.anchor(log_id, size, root))["gasUsed"]
    seconds = time.perf_counter() - started
    last_block = w3.eth.block_number
    transactions = sum(
        len(w3.eth.get_block(number)["transactions"])
        for number in range(first_block, last_block + 1)
    )
    return {
        "transactions": transactions,
        "gas": gas,
        "seconds": seconds,
        "transactions_per_s": rate(transactions, seconds),
    }


def bench_chain(
    store: SqliteStore,
    chain: Web3Chain,
    sender: Transactor,
    windows: list[Window],
    window_seconds: float,
) -> dict[str, Any]:
    """Fleet-wide anchors vs per-device-window anchors of the same readings, same EVM."""
    readings = sum(w.readings for w in windows)
    checkpoints = [c for c in store.checkpoints(LOG, 0, len(windows) + 1)]
    fleet_wide = [
        (log_key(LOG), c.checkpoint.size, c.checkpoint.root) for c in checkpoints
    ]  # the anchorer sends exactly these, one per interval
    per_device: list[tuple[bytes, int, bytes]] = []
    device_sizes: dict[str, int] = defaultdict(int)
    for window in windows:
        for device, leaf_hashes in sorted(window.device_leaf_hashes.items()):
            device_sizes[device] += len(leaf_hashes)
            root = merkle_root(SHA3_256, leaf_hashes)
            per_device.append((log_key(f"{LOG}/{device}"), device_sizes[device], root))
    registry = chain.registry_address
    ours = chain_design(chain.w3, sender, registry, fleet_wide)
    for anchor in chain.anchored_events(LOG):  # as the anchorer records them
        store.add_anchor(anchor)
    theirs = chain_design(chain.w3, sender, registry, per_device)
    devices = len(device_sizes)
    per_100k = 100_000 / readings
    return {
        "readings": readings,
        "windows": len(windows),
        "devices": devices,
        "fleet_wide": {**ours, "transactions_per_100k_readings": ours["transactions"] * per_100k},
        "per_device_window": {
            **theirs,
            "transactions_per_100k_readings": theirs["transactions"] * per_100k,
        },
        "ratio_per_device_vs_fleet_wide_transactions": theirs["transactions"]
        / ours["transactions"],
        "projected_tx_per_s_at_10000_devices": {
            # the measured transactions per window (and per device and window), scaled
            "fleet_wide": ours["transactions"] / len(windows) / window_seconds,
            "per_device_window": theirs["transactions"]
            / (len(windows) * devices)
            * 10_000
            / window_seconds,
        },
    }


def bench_proofs(store: SqliteStore, sample: list[int]) -> tuple[dict[str, Any], list[Any]]:
    baseline: dict[str, float] = {}
    with timed(baseline):
        readings = [store.reading(i) for i in sample]
    generate: dict[str, float] = {}
    with timed(generate):
        bundles = []
        for reading_id in sample:
            reading = store.reading(reading_id)
            assert reading is not None
            bundles.append(proof_bundle(store, reading))
    assert all(r is not None for r in readings)
    assert all(b["anchor"] is not None for b in bundles), "every proof should carry its anchor"
    return {
        "proofs": len(sample),
        "baseline_reading_lookups_per_s": rate(len(sample), baseline["seconds"]),
        "proofs_per_s": rate(len(sample), generate["seconds"]),
        "ratio_proofs_vs_lookups": baseline["seconds"] / generate["seconds"],
        "inclusion_path_lengths": sorted({len(b["inclusion"]) for b in bundles}),
    }, bundles


def bench_verify(bundles: list[Any], lookup: AnchorLookup, anchored: int) -> dict[str, Any]:
    signed = [SignedCheckpoint.from_json(b["checkpoint"]) for b in bundles]
    baseline: dict[str, float] = {}
    with timed(baseline):
        for checkpoint in signed:
            recover_signer(checkpoint)
    offline: dict[str, float] = {}
    with timed(offline):
        verdicts = [verify_bundle(b) for b in bundles]
    assert all(c.ok is not False for v in verdicts for c in v)
    on_chain: dict[str, float] = {}
    with timed(on_chain):
        checked = [verify_bundle(b, lookup) for b in bundles[:anchored]]
    assert all(c.ok for v in checked for c in v), checked[0]
    return {
        "proofs": len(bundles),
        "baseline_signer_recoveries_per_s": rate(len(bundles), baseline["seconds"]),
        "offline_proofs_per_s": rate(len(bundles), offline["seconds"]),
        "ratio_offline_vs_signer_recovery": baseline["seconds"] / offline["seconds"],
        "with_anchor_on_chain": {
            "proofs": anchored,
            "proofs_per_s": rate(anchored, on_chain["seconds"]),
        },
    }


def bench_audit(store: SqliteStore, chain: Web3Chain) -> dict[str, Any]:
    size = store.log_size(LOG)
    baseline: dict[str, float] = {}
    with timed(baseline):
        for start in range(0, size, PAGE):
            store.readings_in_log(LOG, start, PAGE)
            store.leaves(LOG, start, PAGE)
    audit: dict[str, float] = {}
    with timed(audit):
        report = audit_log(store, LOG, chain)
    assert report.ok, report.problem
    return {
        "readings": report.readings,
        "checkpoints": report.checkpoints,
        "anchors": report.anchors,
        "baseline_paged_reads_per_s": rate(size, baseline["seconds"]),
        "audit_readings_per_s": rate(report.readings, audit["seconds"]),
        "ratio_audit_vs_paged_reads": baseline["seconds"] / audit["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--meters", type=int, default=150)
    parser.add_argument("--pmus", type=int, default=50)
    parser.add_argument("--window", type=int, default=10, help="rounds (seconds) per anchor")
    parser.add_argument("--proofs", type=int, default=2_000)
    parser.add_argument("--anchored-proofs", type=int, default=100)
    parser.add_argument("--report", type=Path, default=Path("benchmarks/results/certify.json"))
    args = parser.parse_args()
    fleet = Fleet(PRODUCER[0], meters=args.meters, pmus=args.pmus)
    anchorer, admin, log_signer = Account.create(), Account.create(), Account.create()
    with tempfile.TemporaryDirectory(prefix="bal-bench-") as tmp:
        workdir = Path(tmp)
        store = SqliteStore(workdir / "scd.sqlite3")
        UserService(store, Wallets("bench-passphrase")).create(*PRODUCER, Role.PRODUCER)
        ingest = IngestService(store, log_id=LOG, max_payload_bytes=1 << 20)
        print(f"decoding about {args.readings:,} readings of {len(fleet.devices())} devices ...")
        windows = decode_workload(ingest, fleet, args.readings, args.window)
        print("append ...")
        append = bench_append(windows, workdir, batch=2000)
        checkpointer = Checkpointer(
            store, log_id=LOG, private_key=bytes(log_signer.key), clock=lambda: datetime.now(UTC)
        )
        write = store_windows(store, checkpointer, windows)
        print("chain ...")
        embedded = EmbeddedChain(
            workdir / "chain.sqlite3", chain_id=1337, funded=[admin.address, anchorer.address]
        )
        w3 = Web3(embedded.provider)
        deployment = deploy_contracts(w3, bytes(admin.key), [anchorer.address])
        chain = Web3Chain(w3, deployment, bytes(anchorer.key))
        anchoring = bench_chain(
            store, chain, Transactor(w3, bytes(anchorer.key)), windows, args.window
        )
        print("proofs ...")
        ids = [
            r.id
            for start in range(0, write["readings"], PAGE)
            for r in store.readings_in_log(LOG, start, PAGE)
        ]
        sample = random.Random(7).sample(ids, min(args.proofs, len(ids)))
        proofs, bundles = bench_proofs(store, sample)
        verification = bench_verify(
            bundles, web3_anchor_lookup(lambda: w3, "the embedded chain"), args.anchored_proofs
        )
        print("audit ...")
        audit = bench_audit(store, chain)
        embedded.close()
        store.close()
    report = {
        "benchmark": "certify",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "workload": {
            "devices": len(fleet.devices()),
            "meters": fleet.meters,
            "pmus": fleet.pmus,
            "rounds_per_window": args.window,
            "windows": len(windows),
            "messages": write["messages"],
            "readings": write["readings"],
        },
        "append": {**append, "store_write": write},
        "chain": anchoring,
        "proofs": proofs,
        "verify": verification,
        "audit": audit,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
