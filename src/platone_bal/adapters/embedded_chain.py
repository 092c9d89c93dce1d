"""The embedded chain: a real EVM (py-evm, driven through eth-tester) kept in the data dir.

py-evm ships only an in-memory database, so a restart would forget every anchor. Here
its key-value store is a SQLite file: writes of a block collect in memory and are
committed in one fsynced transaction after the block is mined. A kill -9 therefore
loses at most the block being built, never part of one; the anchorer notices from
the chain's own state that its anchor is missing and sends it again.

Transactions are mined one per block as they arrive (as ganache does), under one lock,
so the BAL's threads and the JSON-RPC server can share the chain.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth.abc import AtomicWriteBatchAPI
from eth.chains.base import MiningChain
from eth.consensus.applier import ConsensusApplier
from eth.consensus.noproof import NoProofConsensus
from eth.db.atomic import AtomicDBWriteBatch
from eth.db.backends.base import BaseAtomicDB
from eth.exceptions import TransactionNotFound as UnknownToChain
from eth.typing import AccountDetails
from eth.vm.forks.shanghai import ShanghaiVM
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import get_default_genesis_params
from eth_tester.backends.pyevm.serializers import (
    serialize_transaction,
    serialize_transaction_receipt,
)
from eth_tester.exceptions import TransactionNotFound
from eth_typing import Hash32
from eth_utils.address import to_canonical_address
from web3 import EthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse

_CALLER_KEY = b"platone-bal:eth-call-sender"
GENESIS_BALANCE = 10**30  # wei; the node's accounts never run out of gas money
_MISSING = b""


class SqliteKeyValue(BaseAtomicDB):
    """py-evm's key-value database on SQLite, committed explicitly at block boundaries."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)"
            " WITHOUT ROWID"
        )
        self._pending: dict[bytes, bytes | None] = {}

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is None:
                raise KeyError(key)
            return value
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[key] = None

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        with AtomicDBWriteBatch._commit_unless_raises(self) as batch:
            yield batch

    def commit(self) -> None:
        """Make every write since the last commit durable, all or nothing."""
        if not self._pending:
            return
        writes = [(k, v) for k, v in self._pending.items() if v is not None]
        deletes = [(k,) for k, v in self._pending.items() if v is None]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", writes)
            self._db.executemany("DELETE FROM kv WHERE key = ?", deletes)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._pending.clear()

    def discard(self) -> None:
        """Forget uncommitted writes (a block that failed half-way)."""
        self._pending.clear()

    def is_empty(self) -> bool:
        return self._db.execute("SELECT 1 FROM kv LIMIT 1").fetchone() is None

    def close(self) -> None:
        self._db.close()


def _chain_class(chain_id: int) -> type[MiningChain]:
    vm_configuration = ConsensusApplier(NoProofConsensus).amend_vm_configuration(((0, ShanghaiVM),))

    class BalChain(MiningChain):
        def create_header_from_parent(self, parent_header: Any, **header_params: Any) -> Any:
            # a constant gas limit, as eth-tester's chain keeps it
            header_params["gas_limit"] = parent_header.gas_limit
            return super().create_header_from_parent(parent_header, **header_params)

        def get_transaction_builder(self) -> Any:
            return super().get_vm().get_transaction_builder()

    BalChain.chain_id = chain_id
    BalChain.vm_configuration = vm_configuration
    return BalChain


class _PersistentBackend(PyEVMBackend):  # type: ignore[misc]
    """eth-tester's py-evm backend on a SqliteKeyValue, committing after each block."""

    def __init__(self, db: SqliteKeyValue, chain_id: int, funded: list[str]) -> None:
        self.db = db
        self.account_keys = ()
        chain_class = _chain_class(chain_id)
        if db.is_empty():
            genesis_state = {
                to_canonical_address(address): AccountDetails(
                    balance=GENESIS_BALANCE, nonce=0, code=b"", storage={}
                )
                for address in funded
            }
            self.chain = chain_class.from_genesis(db, get_default_genesis_params(), genesis_state)
            db[_CALLER_KEY] = to_canonical_address(funded[0])
            db.commit()
        else:
            self.chain = chain_class(db)
        # eth-tester runs eth_call from a sender that can pay for the gas: a funded account
        self.caller = "0x" + db[_CALLER_KEY].hex()

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the embedded chain is persistent; it is never reset")

    def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._locate(transaction_hash)
        pending = block.number == self.chain.get_block().number
        return serialize_transaction(block, transaction, index, pending)

    def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._locate(transaction_hash)
        pending = block.number == self.chain.get_block().number
        receipts = block.get_receipts(self.chain.chaindb)
        return serialize_transaction_receipt(
            block, receipts, transaction, index, pending, self.chain.get_vm()
        )

    def _locate(self, transaction_hash: bytes) -> tuple[Any, Any, int]:
        """(block, transaction, index) through py-evm's transaction index.

        eth-tester walks back from the head block by block to find a transaction, which
        on a chain anchoring every 10 s costs seconds per look-up within days (every
        `bal verify --rpc` and receipt wait does one); the index is one read.
        """
        building = self.chain.get_block()
        for index, transaction in enumerate(building.transactions):
            if transaction.hash == transaction_hash:
                return building, transaction, index
        try:
            number, index = self.chain.get_canonical_transaction_index(Hash32(transaction_hash))
        except UnknownToChain:
            raise TransactionNotFound(f"no transaction 0x{transaction_hash.hex()}") from None
        block = self.chain.get_canonical_block_by_number(number)
        return block, block.transactions[index], index

    def mine_blocks(self, num_blocks: int = 1, coinbase: Any = None) -> Any:
        try:
            if coinbase is None:
                hashes = super().mine_blocks(num_blocks)
            else:
                hashes = super().mine_blocks(num_blocks, coinbase)
        except BaseException:
            self.db.discard()
            raise
        self.db.commit()
        return hashes


class EmbeddedChain:
    """A persistent single-node Ethereum chain in the data directory.

    `provider` is a web3 provider for the node's own use (any method eth-tester
    supports), one request at a time; `entrypoints/chain_rpc.ReadOnlyRpc` serves the
    read-only JSON-RPC subset on `BAL_CHAIN_RPC_PORT` through it.
    """

    def __init__(self, path: Path, *, chain_id: int, funded: list[str]) -> None:
        """Open the chain at `path`; a new one starts with `funded` accounts rich."""
        self.chain_id = chain_id
        self._lock = threading.RLock()
        self._db = SqliteKeyValue(path)
        self.backend = _PersistentBackend(self._db, chain_id, funded)
        self.tester = EthereumTester(backend=self.backend, auto_mine_transactions=True)
        self.provider = _LockedProvider(self.tester, self._lock, chain_id, self.backend.caller)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _LockedProvider(EthereumTesterProvider):
    """eth-tester's web3 provider, one request at a time across threads."""

    def __init__(
        self, tester: EthereumTester, lock: threading.RLock, chain_id: int, caller: str
    ) -> None:
        super().__init__(ethereum_tester=tester)
        self._chain_lock = lock
        self._chain_id = chain_id
        self._caller = caller

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_chainId":  # web3's tester defaults answer a fixed id
            return {"jsonrpc": "2.0", "id": 0, "result": self._chain_id}
        if method in ("eth_call", "eth_estimateGas") and not params[0].get("from"):
            # eth-tester insists on a sender that can pay for the call's gas; nodes do not
            params = [{**params[0], "from": self._caller}, *params[1:]]
        with self._chain_lock:
            return super().make_request(method, params)
