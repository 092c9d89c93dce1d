"""`bal audit` against what a dishonest operator could do to a stopped node's database.

One real store (SQLite) is built once: 20 readings in bal-main and 12 entries in
bal-audit, checkpointed and anchored three times each on a real embedded EVM (py-evm),
plus a refused payload and one refused as too large (stored cut). Each test edits a
fresh copy of that data directory with plain SQL, then audits it: through
`audit_log`, and through `bal audit` for the rollback. Every test runs twice: with the
log read in one page by this process, and in pages of 4 records checked by 2 worker
processes (the finding must be the same, word for word).
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from typer.testing import CliRunner
from web3 import Web3

from platone_bal.adapters.embedded_chain import EmbeddedChain
from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.adapters.wallets import Wallets
from platone_bal.adapters.web3_chain import Deployment, Web3Chain, deploy_contracts
from platone_bal.bootstrap import store_opener
from platone_bal.cli import app
from platone_bal.config import Settings
from platone_bal.domain.audit import AUDIT_LOG, AuditEntry
from platone_bal.domain.users import Role
from platone_bal.services.anchorer import Anchorer
from platone_bal.services.audit import AuditReport, Pages, audit_log
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.ingest import IngestService
from platone_bal.services.recorder import Recorder
from platone_bal.services.users import UserService
from tests.unit.test_ingest import NOW, delivery, pmu_of

LOG = "bal-main"
ADMIN, ANCHORER, SIGNER = Account.create(), Account.create(), Account.create()
MAX_PAYLOAD = 4096
FORGED = hashlib.sha3_256(b"forged").digest()
runner = CliRunner()
SPLIT = False
"""Whether `audit` reads pages of 4 records checked by 2 workers (see `split`)."""


@pytest.fixture(autouse=True, params=[False, True], ids=["one-process", "pages-of-4-in-workers"])
def split(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(sys.modules[__name__], "SPLIT", request.param)
    return bool(request.param)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The untouched data directory: scd.sqlite3, chain/chain.sqlite3, chain/deployment.json."""
    data = tmp_path_factory.mktemp("pristine") / "data"
    store = SqliteStore(data / "scd.sqlite3")
    embedded = EmbeddedChain(
        data / "chain" / "chain.sqlite3", chain_id=1337, funded=[ADMIN.address, ANCHORER.address]
    )
    w3 = Web3(embedded.provider)
    deployment = deploy_contracts(w3, bytes(ADMIN.key), [ANCHORER.address])
    deployment.save(data / "chain" / "deployment.json")
    chain = Web3Chain(w3, deployment, bytes(ANCHORER.key))
    UserService(store, Wallets("test-passphrase")).create(
        "producer1", "secret-pass-1", Role.PRODUCER
    )
    ingest = IngestService(store, log_id=LOG, max_payload_bytes=MAX_PAYLOAD)
    for log in (LOG, AUDIT_LOG):
        signer = Checkpointer(store, log_id=log, private_key=bytes(SIGNER.key), clock=lambda: NOW)
        anchorer = Anchorer(store, chain, log_id=log)
        for batch, payloads in enumerate((3, 3, 4)):  # 6, 12, 20 readings; 4, 8, 12 entries
            if log == LOG:
                ingest.ingest([delivery(pmu_of(f"pmu{batch}-{n}")) for n in range(payloads)])
            else:
                Recorder(store).append_audit([access(batch * 4 + n) for n in range(4)])
            assert signer.checkpoint_now() is not None
            assert anchorer.anchor_once() is not None
    refused = ingest.ingest([delivery(b"not a payload"), delivery(b"x" * (MAX_PAYLOAD + 10))])
    assert refused.rejections == 2
    store.close()
    embedded.close()
    yield data


def access(count: int) -> AuditEntry:
    return AuditEntry(NOW, "consumer1", "http", "readings.read", ("producer1",), "/v1/r", count)


@pytest.fixture
def data(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the pristine data directory, for one edit."""
    return Path(shutil.copytree(pristine, tmp_path / "data"))


def audit(data: Path, log: str = LOG, *, with_chain: bool = True) -> AuditReport:
    """`audit_log` as `bal audit` runs it: the store and the embedded chain of `data`."""
    store = SqliteStore(data / "scd.sqlite3")
    embedded = EmbeddedChain(data / "chain" / "chain.sqlite3", chain_id=1337, funded=[])
    try:
        deployment = Deployment.load(data / "chain" / "deployment.json")
        assert deployment is not None
        chain = Web3Chain(Web3(embedded.provider), deployment) if with_chain else None
        opener = partial(SqliteStore, data / "scd.sqlite3")
        pages = Pages(4, 2, opener, wait_for_workers=True) if SPLIT else Pages()
        return audit_log(store, log, chain, pages=pages)
    finally:
        store.close()
        embedded.close()


def edit(data: Path, sql: str, *params: Any) -> None:
    """One edit of the stopped node's database, with plain SQL; it must change a row."""
    with closing(sqlite3.connect(data / "scd.sqlite3")) as db:
        changed = db.execute(sql, params).rowcount
        db.commit()
    assert changed > 0, f"the edit changed nothing: {sql}"


def query(data: Path, sql: str, *params: Any) -> Any:
    with closing(sqlite3.connect(data / "scd.sqlite3")) as db:
        return db.execute(sql, params).fetchone()


def roll_back(data: Path, log: str, keep: int) -> None:
    """The store as it was at `keep` leaves: later records, their messages, their Merkle
    nodes, checkpoints and anchors gone (a backup restored, say)."""
    if log == AUDIT_LOG:
        edit(data, "DELETE FROM audit WHERE idx >= ?", keep)
        edit(data, "DELETE FROM audit_producers WHERE idx >= ?", keep)
    else:
        edit(data, "DELETE FROM readings WHERE log = ? AND idx >= ?", log, keep)
        edit(
            data,
            "DELETE FROM messages WHERE readings > 0"
            " AND id NOT IN (SELECT message_id FROM readings)",
        )
    edit(data, "DELETE FROM nodes WHERE log = ? AND ((idx + 1) << level) > ?", log, keep)
    edit(data, "DELETE FROM checkpoints WHERE log = ? AND size > ?", log, keep)
    edit(data, "DELETE FROM anchors WHERE log = ? AND size > ?", log, keep)
    edit(data, "UPDATE log_heads SET size = ? WHERE log = ?", keep, log)


def test_the_untouched_store_passes_every_check(data: Path) -> None:
    readings = audit(data)
    assert readings.ok, readings.problem
    assert (readings.size, readings.readings, readings.checkpoints, readings.anchors) == (
        20,
        20,
        3,
        3,
    )
    assert readings.messages == 11  # 10 certified payloads and the refused "not a payload"
    assert readings.notes == [
        "1 message(s) refused as too large are stored cut to the size limit: "
        "their payloads cannot be rechecked against their digests"
    ]
    entries = audit(data, AUDIT_LOG)
    assert entries.ok, entries.problem
    assert (entries.readings, entries.checkpoints, entries.anchors) == (12, 3, 3)
    assert entries.notes == []


@pytest.mark.parametrize(("log", "size", "keep"), [(LOG, 20, 12), (AUDIT_LOG, 12, 8)])
def test_a_store_rolled_back_behind_the_chain_fails_naming_both_sizes(
    data: Path, log: str, size: int, keep: int
) -> None:
    roll_back(data, log, keep)
    alone = audit(data, log, with_chain=False)
    assert alone.ok, alone.problem  # consistent in itself: only the chain can tell
    report = audit(data, log)
    assert report.problem == (
        f"the chain's latest anchor of this log is of size {size}, the store holds only "
        f"{keep} leaves: the store is behind the chain (rolled back?)"
    )
    assert report.bad_index == keep


def test_bal_audit_exits_1_on_a_rolled_back_store(data: Path) -> None:
    env = {"BAL_DATA_DIR": str(data), "BAL_CHAIN_RPC_PORT": "0"}
    clean = runner.invoke(app, ["audit"], env=env)
    assert clean.exit_code == 0, clean.output
    assert "20 readings, 3 checkpoints, 3 anchors checked, 11 message payloads" in clean.output
    assert "cannot be rechecked" in clean.output and "AUDIT OK" in clean.output
    roll_back(data, LOG, 12)
    broken = runner.invoke(app, ["audit"], env=env)
    assert broken.exit_code == 1, broken.output
    assert "AUDIT FAILED" in broken.output and "index 12:" in broken.output
    assert "size 20, the store holds only 12 leaves" in " ".join(broken.output.split())


def test_bal_audit_takes_a_number_of_workers(data: Path) -> None:
    env = {"BAL_DATA_DIR": str(data), "BAL_CHAIN_RPC_PORT": "0"}
    for workers in ("0", "2"):
        result = runner.invoke(app, ["audit", "--workers", workers], env=env)
        assert result.exit_code == 0 and "AUDIT OK" in result.output, result.output


def test_workers_open_their_stores_as_bal_audit_does(data: Path) -> None:
    """The opener `bal audit` gives its workers pickles, and opens the node's database."""
    opener = pickle.loads(pickle.dumps(store_opener(Settings(data_dir=data))))  # noqa: S301
    store = SqliteStore(data / "scd.sqlite3")
    try:
        pages = Pages(4, 2, opener, wait_for_workers=True)
        report = audit_log(store, LOG, None, pages=pages)
        assert report.ok and report.readings == 20, report.problem
    finally:
        store.close()


@pytest.mark.parametrize(("log", "keep", "beyond"), [(LOG, 12, 15), (AUDIT_LOG, 8, 10)])
def test_a_record_left_beyond_a_rolled_back_log_is_found(
    data: Path, log: str, keep: int, beyond: int
) -> None:
    """The log cut back to `keep` leaves but one later record left behind, after a gap
    (the records in between gone too): the audit finds it past the log's end."""
    if log == AUDIT_LOG:
        table, survivor = "audit", query(data, "SELECT * FROM audit WHERE idx = ?", beyond)
    else:
        table = "readings"
        survivor = query(data, "SELECT * FROM readings WHERE log = ? AND idx = ?", log, beyond)
    roll_back(data, log, keep)
    marks = ", ".join("?" * len(survivor))
    edit(data, f"INSERT INTO {table} VALUES ({marks})", *survivor)  # noqa: S608
    report = audit(data, log, with_chain=False)
    assert report.problem == (
        f"a record at index {beyond} lies beyond the log's {keep} leaves (it has no leaf hash)"
    )
    assert report.bad_index == keep


@pytest.mark.parametrize(("log", "node", "leaves"), [(LOG, 1, "8-15"), (AUDIT_LOG, 0, "0-7")])
def test_a_changed_merkle_node_at_level_3_is_found(
    data: Path, log: str, node: int, leaves: str
) -> None:
    edit(
        data,
        "UPDATE nodes SET hash = ? WHERE log = ? AND level = 3 AND idx = ?",
        FORGED,
        log,
        node,
    )
    report = audit(data, log)
    assert report.problem is not None
    assert report.problem.startswith(
        f"stored Merkle node (level 3, index {node}) over leaves {leaves} is 0x{FORGED.hex()}; "
        "the leaves give 0x"
    )
    assert report.bad_index == node * 8


def test_a_changed_byte_of_a_certified_payload_is_found(data: Path) -> None:
    message_id, payload = query(
        data, "SELECT id, payload FROM messages WHERE readings > 0 ORDER BY id LIMIT 1 OFFSET 2"
    )
    forged = bytes(payload).replace(b'"data": 11', b'"data": 19')
    assert len(forged) == len(payload) and forged != payload
    edit(data, "UPDATE messages SET payload = ? WHERE id = ?", forged, message_id)
    report = audit(data)
    assert report.problem is not None
    assert report.problem.startswith(f"message {message_id}: payload does not hash to its digest")
    assert report.bad_index == 4  # its readings are the log's 5th and 6th


def test_a_changed_byte_of_a_refused_payload_is_found(data: Path) -> None:
    (message_id,) = query(data, "SELECT id FROM messages WHERE payload = ?", b"not a payload")
    edit(data, "UPDATE messages SET payload = ? WHERE id = ?", b"not a paylaod", message_id)
    report = audit(data)
    assert report.problem is not None
    assert report.problem.startswith(f"message {message_id}: payload does not hash to its digest")
    assert report.bad_index is None  # it gave no reading


def test_a_certified_payload_cut_short_is_found_not_noted(data: Path) -> None:
    """Cut payloads are only noted (they cannot be rechecked), so cutting a certified
    one must not turn a changed payload into a note."""
    edit(data, "UPDATE messages SET payload = substr(payload, 1, 10) WHERE id = 3")
    report = audit(data)
    assert report.problem is not None
    assert report.problem.endswith("a message that gave readings is never cut")
    assert report.bad_index == 4


def anchor_facts(data: Path) -> dict[str, Any]:
    """What the edits of anchors use and the findings name: their txs and a block."""

    def tx(log: str, size: int) -> str:
        (found,) = query(data, "SELECT tx FROM anchors WHERE log = ? AND size = ?", log, size)
        return str(found)

    (block,) = query(data, "SELECT block FROM anchors WHERE log = ? AND size = 6", LOG)
    return {
        "tx6": tx(LOG, 6),
        "tx20": tx(LOG, 20),
        "audit8": tx(AUDIT_LOG, 8),
        "block": block,
        "unknown": "0x" + "ab" * 32,
        "old": "2000-01-01T00:00:00.000000Z",
    }


@pytest.mark.parametrize(
    ("log", "size", "sql", "value", "expected"),
    [
        (
            LOG,
            6,
            "UPDATE anchors SET tx = ? WHERE log = ? AND size = ?",
            "tx20",
            "anchor of size 6: transaction {tx20} anchored size 20 with root 0x",
        ),
        (
            LOG,
            6,
            "UPDATE anchors SET tx = ? WHERE log = ? AND size = ?",
            "unknown",
            "anchor of size 6: the chain has no transaction {unknown}",
        ),
        (
            LOG,
            6,
            "UPDATE anchors SET block = block + 1 WHERE log = ? AND size = ?",
            None,
            "anchor of size 6: stored block {block_after}, transaction {tx6} was mined in block "
            "{block}",
        ),
        (
            LOG,
            6,
            "UPDATE anchors SET time = ? WHERE log = ? AND size = ?",
            "old",
            "anchor of size 6: stored time {old}, its block's is 20",
        ),
        (
            LOG,
            6,
            "DELETE FROM anchors WHERE log = ? AND size = ?",
            None,
            "the chain anchored size 6 in transaction {tx6} (block {block}); "
            "the store has no record of that anchor",
        ),
        (
            AUDIT_LOG,
            8,
            "DELETE FROM anchors WHERE log = ? AND size = ?",
            None,
            "the chain anchored size 8 in transaction {audit8}",
        ),
    ],
)
def test_a_changed_or_deleted_anchor_is_found(
    data: Path, log: str, size: int, sql: str, value: str | None, expected: str
) -> None:
    facts = anchor_facts(data)
    edit(data, sql, *([facts[value]] if value else []), log, size)
    report = audit(data, log)
    assert report.problem is not None
    assert report.problem.startswith(expected.format(**facts, block_after=facts["block"] + 1)), (
        report.problem
    )


@pytest.mark.parametrize(
    ("log", "sql", "expected", "index"),
    [
        (
            LOG,
            "UPDATE readings SET leaf = CAST(leaf AS TEXT) WHERE idx = 3",
            "the leaf is stored as TEXT, not as the certified bytes",
            3,
        ),
        (
            AUDIT_LOG,
            "UPDATE audit SET leaf = CAST(leaf AS TEXT) WHERE idx = 5",
            "the entry is stored as TEXT, not as the certified bytes",
            5,
        ),
        (
            LOG,
            "UPDATE readings SET attrs = '{not json' WHERE idx = 2",
            "attrs: stored '{not json' is not JSON",
            2,
        ),
        (
            LOG,
            "UPDATE nodes SET hash = 'abc' WHERE log = 'bal-main' AND level = 1 AND idx = 2",
            "stored Merkle node (level 1, index 2) over leaves 4-5 is TEXT 'abc'",
            4,
        ),
        (
            LOG,
            "UPDATE nodes SET hash = 'abc' WHERE log = 'bal-main' AND level = 0 AND idx = 7",
            "the stored leaf hash is TEXT 'abc'",
            7,
        ),
        (
            LOG,
            "UPDATE checkpoints SET root = 'abc' WHERE log = 'bal-main' AND size = 12",
            "checkpoint row of size 12: root is stored as TEXT 'abc', not 32 bytes",
            None,
        ),
        (
            LOG,
            "UPDATE anchors SET root = 'abc' WHERE log = 'bal-main' AND size = 12",
            "anchor row 2: root is stored as TEXT 'abc', not 32 bytes",
            None,
        ),
        (
            LOG,
            "UPDATE messages SET payload = CAST(payload AS TEXT) WHERE id = 1",
            "message 1: payload is stored as TEXT, not as the bytes received",
            0,
        ),
        (
            LOG,
            "UPDATE nodes SET idx = 'last' WHERE log = 'bal-main' AND level = 0 AND idx = 19",
            "the stored leaf hash is missing",
            19,
        ),
    ],
)
def test_a_malformed_row_is_a_finding_that_names_it(
    data: Path, log: str, sql: str, expected: str, index: int | None
) -> None:
    edit(data, sql)
    report = audit(data, log)
    assert report.problem is not None and report.problem.startswith(expected), report.problem
    assert report.bad_index == index


def test_an_anchor_made_in_another_contract_is_found(data: Path) -> None:
    """The operator anchors the same (log, size, root) in a registry of its own and
    points the stored anchor at that transaction: only the node's registry counts."""
    (root,) = query(data, "SELECT root FROM anchors WHERE log = ? AND size = 6", LOG)
    embedded = EmbeddedChain(data / "chain" / "chain.sqlite3", chain_id=1337, funded=[])
    try:
        w3 = Web3(embedded.provider)
        own = deploy_contracts(w3, bytes(ADMIN.key), [ANCHORER.address])
        forged = Web3Chain(w3, own, bytes(ANCHORER.key)).anchor(LOG, 6, bytes(root))
    finally:
        embedded.close()
    edit(
        data,
        "UPDATE anchors SET tx = ?, block = ?, time = ? WHERE log = ? AND size = 6",
        forged.tx,
        forged.block,
        forged.time,
        LOG,
    )
    report = audit(data)
    assert report.problem == (
        f"anchor of size 6: transaction {forged.tx} anchored nothing of this log, "
        f"not size 6 with root 0x{bytes(root).hex()}"
    )
