"""`bal stack up` / `down`: the production topology on one machine, without Docker.

PostgreSQL (a cluster in DIR/postgres), Mosquitto with TLS and Dynamic Security
(DIR/mosquitto), a JSON-RPC Ethereum node (ganache from npm, its chain kept in
DIR/chain), N BAL nodes (DIR/nodeK, one leader, the others standing by and taking their
share of the ingest) and one HTTP port in front of them. The same topology as
`deploy/compose.yaml` and `deploy/k8s/`, with the same settings for each node.

Everything it makes stays in DIR: secrets (0600) in DIR/secrets, the ports and process
ids in DIR/stack.json. `up` again after `down` starts the same stack with its data.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from platone_bal.adapters.node_keys import NodeKeys
from platone_bal.adapters.secret_files import read_or_create_secret
from platone_bal.adapters.wallets import Wallets
from platone_bal.adapters.web3_chain import deploy_contracts, http_web3
from platone_bal.chain_setup import record_deployment, recorded_deployment
from platone_bal.stack.broker import StackBroker
from platone_bal.stack.postgres import PostgresCluster, find_bindir

ROOT = Path(__file__).resolve().parents[3]
GANACHE = ROOT / "node_modules" / ".bin" / "ganache"
CHAIN_ID = 1337
STOP_GRACE = 40.0
"""Seconds a node gets to write what it took and let its lease go (SIGKILL after)."""


class StackError(RuntimeError):
    """The stack could not be brought up or down; the message says what to look at."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class StackState:
    """What `up` made and `down` stops: DIR/stack.json."""

    nodes: int
    http_port: int
    mqtt_port: int
    node_mqtt_port: int = field(default_factory=free_port)
    postgres_port: int = field(default_factory=free_port)
    chain_port: int = field(default_factory=free_port)
    node_ports: list[int] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> StackState | None:
        path = directory / "stack.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def save(self, directory: Path) -> None:
        (directory / "stack.json").write_text(json.dumps(asdict(self), indent=2) + "\n")


class Stack:
    def __init__(self, directory: Path, say: Callable[[str], None] = print) -> None:
        self.directory = directory.resolve()
        self.say = say

    # the parts

    def secret(self, name: str) -> str:
        return read_or_create_secret(self.directory / "secrets" / name, 24)

    def postgres(self, state: StackState) -> PostgresCluster:
        bindir = find_bindir()
        if bindir is None:
            raise StackError("PostgreSQL is not installed (apt-get install postgresql)")
        return PostgresCluster(
            bindir,
            self.postgres_root(),
            state.postgres_port,
            password=self.secret("postgres-password"),
        )

    def postgres_root(self) -> Path:
        """DIR/postgres, where the `postgres` user can reach it. As root, PostgreSQL runs
        as `postgres` (initdb refuses root); a directory under /root (a clone in root's
        home) is out of its reach, so the cluster then lives in that user's home and
        DIR/postgres links to it."""
        inside = self.directory / "postgres"
        if os.geteuid() != 0 or inside.exists() or _reachable_by_postgres(self.directory):
            return inside.resolve() if inside.is_symlink() else inside
        digest = hashlib.sha256(str(self.directory).encode()).hexdigest()[:12]
        home = Path(pwd.getpwnam("postgres").pw_dir) / f"bal-stack-{digest}"
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        inside.symlink_to(home)
        return home

    def broker(self, state: StackState) -> StackBroker:
        return StackBroker(self.directory / "mosquitto", state.mqtt_port, state.node_mqtt_port)

    def database_url(self, state: StackState) -> str:
        return self.postgres(state).url("postgres")

    def chain_url(self, state: StackState) -> str:
        return f"http://127.0.0.1:{state.chain_port}"

    def node_env(self, state: StackState, number: int) -> dict[str, str]:
        """The settings of node `number` (1-based): those of deploy/compose.yaml."""
        broker = self.broker(state)
        return {
            "BAL_DATA_DIR": str(self.directory / f"node{number}"),
            "BAL_BIND": "127.0.0.1",
            "BAL_HTTP_PORT": str(state.node_ports[number - 1]),
            "BAL_STORE": "postgres",
            "BAL_DATABASE_URL": self.database_url(state),
            "BAL_KEY_PASSPHRASE": self.secret("key-passphrase"),
            "BAL_ADMIN_PASSWORD": self.secret("admin-password"),
            "BAL_BROKER": "mosquitto",
            "BAL_MQTT_URL": broker.node_url,
            "BAL_MQTT_CA_FILE": str(broker.ca_file),
            "BAL_MQTT_USERNAME": "bal-service",
            "BAL_MQTT_PASSWORD": self.secret("mqtt-service-password"),
            "BAL_MQTT_SHARED_GROUP": "bal",
            "BAL_NODE_NAME": f"node{number}",
            "BAL_CHAIN": "rpc",
            "BAL_CHAIN_URL": self.chain_url(state),
            "BAL_TRUSTED_PROXIES": "127.0.0.1",  # the HTTP front names the caller
            "BAL_ARCHIVE_DIR": str(self.directory / "archives"),  # one for every node
        }

    # up

    def up(self, nodes: int = 2, http_port: int = 8080, mqtt_port: int = 8883) -> StackState:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        state = StackState.load(self.directory)
        if state is not None and any(_alive(pid) for pid in state.pids.values()):
            raise StackError(f"the stack in {self.directory} is up: `bal stack down` first")
        if state is None or state.nodes != nodes:
            previous = state
            state = StackState(nodes, http_port, mqtt_port)
            if previous is not None:  # keep the ports of what holds data
                state.postgres_port = previous.postgres_port
                state.chain_port = previous.chain_port
                state.node_mqtt_port = previous.node_mqtt_port
        state.http_port, state.mqtt_port = http_port, mqtt_port
        state.node_ports = state.node_ports[:nodes]
        while len(state.node_ports) < nodes:
            state.node_ports.append(free_port())
        state.pids = {}
        try:
            self._start_postgres(state)
            self._start_broker(state)
            self._start_chain(state)
            for number in range(1, nodes + 1):
                self._start_node(state, number)
            self._start_proxy(state)
        except BaseException:
            state.save(self.directory)
            self.down()
            raise
        state.save(self.directory)
        return state

    def _start_postgres(self, state: StackState) -> None:
        cluster = self.postgres(state)
        try:
            if not cluster.initialised:
                self.say("PostgreSQL: a new cluster in postgres/")
                cluster.initdb()
            if not cluster.running:
                cluster.start()
        except RuntimeError as error:
            raise StackError(f"PostgreSQL: {error}\n{cluster.log_tail()}") from error

    def _start_broker(self, state: StackState) -> None:
        broker = self.broker(state)
        broker.prepare(self.secret("mqtt-service-password"))
        state.pids["mosquitto"] = self._spawn("mosquitto", broker.command(), {})
        _wait(lambda: _port_open(state.node_mqtt_port), 15, "Mosquitto", self._log("mosquitto"))

    def _start_chain(self, state: StackState) -> None:
        """ganache, with the BAL's chain keys funded, and the contracts deployed once."""
        from platone_bal.adapters.postgres import PostgresStore

        if not GANACHE.exists():
            raise StackError(f"{GANACHE} is missing: run `npm ci` (make stack does)")
        store = PostgresStore(self.database_url(state))  # creates the schema on first use
        try:
            keys = NodeKeys(store, Wallets(self.secret("key-passphrase")))
            admin, anchorer = keys["chain-admin"], keys["anchorer"]
            funded = [
                f"--wallet.accounts=0x{key.private_key.hex()},{10**24}" for key in (admin, anchorer)
            ]
            command = [
                str(GANACHE),
                "--server.host=127.0.0.1",
                f"--server.port={state.chain_port}",
                f"--database.dbPath={self.directory / 'chain'}",
                f"--chain.chainId={CHAIN_ID}",
                "--chain.hardfork=shanghai",
                "--logging.quiet",
                *funded,
            ]
            (self.directory / "chain").mkdir(exist_ok=True)
            state.pids["chain"] = self._spawn("chain", command, {})
            url = self.chain_url(state)
            _wait(lambda: _chain_answers(url), 60, "the chain (ganache)", self._log("chain"))
            if recorded_deployment(store, None) is None:
                self.say("chain: deploying the contracts")
                deployed = deploy_contracts(http_web3(url), admin.private_key, [anchorer.address])
                record_deployment(store, deployed)
        finally:
            store.close()

    def _start_node(self, state: StackState, number: int) -> None:
        name = f"node{number}"
        command = [sys.executable, "-m", "platone_bal.cli", "up"]
        state.pids[name] = self._spawn(name, command, self.node_env(state, number))
        base = f"http://127.0.0.1:{state.node_ports[number - 1]}"
        _wait(lambda: _healthy(base), 90, f"BAL {name}", self._log(name))

    def _start_proxy(self, state: StackState) -> None:
        backends = [f"http://127.0.0.1:{port}" for port in state.node_ports]
        command = [
            sys.executable,
            "-m",
            "platone_bal.cli",
            "stack",
            "proxy",
            "--port",
            str(state.http_port),
            *backends,
        ]
        state.pids["proxy"] = self._spawn("proxy", command, {})
        base = f"http://127.0.0.1:{state.http_port}"
        _wait(lambda: _healthy(base), 30, "the HTTP front", self._log("proxy"))

    def _log(self, name: str) -> Path:
        return self.directory / "logs" / f"{name}.log"

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> int:
        """A process of the stack, in a session of its own (it outlives `up`)."""
        self._log(name).parent.mkdir(exist_ok=True)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("BAL_")}
        with self._log(name).open("ab") as log:
            process = subprocess.Popen(
                command,
                env={**inherited, "ETH_HASH_BACKEND": "pysha3", **env},
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return process.pid

    # down

    def down(self) -> None:
        """Stop the HTTP front, the nodes (each writes what it took), the chain, the
        broker (it saves) and PostgreSQL, in that order."""
        state = StackState.load(self.directory)
        if state is None:
            raise StackError(f"no stack in {self.directory}")
        order = ["proxy", *(f"node{n}" for n in range(1, state.nodes + 1)), "chain", "mosquitto"]
        for group in (["proxy"], order[1:-2], ["chain"], ["mosquitto"]):
            pids = [state.pids[name] for name in group if name in state.pids]
            _terminate(pids, STOP_GRACE)
        self.postgres(state).stop()
        state.pids = {}
        state.save(self.directory)

    def remove(self) -> None:
        """Delete the stopped stack's data: the directory and a cluster it links to."""
        linked = self.directory / "postgres"
        if linked.is_symlink():
            shutil.rmtree(linked.resolve(), ignore_errors=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def _reachable_by_postgres(directory: Path) -> bool:
    """Whether the `postgres` user may enter `directory` (every parent searchable)."""
    command = ["runuser", "-u", "postgres", "--", "test", "-x", str(directory)]
    try:
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie of ours is not alive
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False


def _terminate(pids: list[int], grace: float) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _wait(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise StackError(f"{what} did not come up within {timeout:.0f} s; {log}:\n{tail}")
        time.sleep(0.2)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _chain_answers(url: str) -> bool:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        return httpx.post(url, json=body, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
