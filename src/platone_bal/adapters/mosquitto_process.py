"""The node's own Mosquitto: configured, started and supervised by `bal up`.

The embedded default and production run the same broker, so they share one code path
and one set of tests. Mosquitto keeps its configuration, Dynamic Security state and
persistence in `DATA_DIR/mosquitto/`. It is configured so that nothing it acknowledged
is dropped (ARCHITECTURE §7, README "What is guaranteed"):

- persistence with autosave after every change: the BAL's session, its subscription
  and the messages queued for it are on disk at the end of each of Mosquitto's loop
  iterations, and on SIGTERM;
- no limit on messages in flight and a queue limit of ten million (not 0, "no limit":
  with 0, Mosquitto 2.0.11 disconnects a client whose publish its ACL denies); the
  BAL's subscriber bounds what it holds with MQTT 5's Receive Maximum; QoS 0 messages
  are queued for it too.

The node talks to it as its service account through a Unix socket in a private
directory (0700), which no other local user can reach; devices and users reach the
public listener (`BAL_MQTT_PORT`, or only `BAL_MQTT_TLS_PORT` under TLS). On the public
listener a connection's client id is its login, whatever the client sends
(`use_username_as_clientid`): a session belongs to the login that made it, no one can
resume or end another login's session, and the node's own sessions (ids `bal:...`,
which no login can be) are out of reach. One session per login: a second connection
with the same login takes the session over from the first.

Mosquitto 2.0 sends a PUBACK before the message reaches its disk, so the journal
plugin (`mosquitto_plugins/bal_journal.c`) writes each publish on `platone/...` to a
journal first; the node replays from it what a Mosquitto crash lost
(services.journal_replay).

Failed logins slow down per username and per address (`bal_throttle.c`, loaded before
Dynamic Security), as HTTP sign-ins do.

A supervisor thread restarts Mosquitto if it dies. The child gets SIGTERM when the node
dies, even by kill -9 (Linux parent-death signal), so it saves its state and frees the
ports; a child left over anyway is found through its pid file and stopped at the next
start.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from platone_bal import metrics
from platone_bal.adapters.dynsec import ACL_TYPE
from platone_bal.adapters.mosquitto_plugins import PluginBuildError, build_plugin
from platone_bal.adapters.mosquitto_plugins.journal import MosquittoJournal
from platone_bal.domain.broker_policy import SERVICE_ROLE, SERVICE_RULES

log = logging.getLogger(__name__)

SERVICE_USERNAME = "bal-service"
ADMIN_ROLE_ACLS = [
    ("publishClientSend", "$CONTROL/dynamic-security/#"),
    ("publishClientReceive", "$CONTROL/dynamic-security/#"),
    ("subscribePattern", "$CONTROL/dynamic-security/#"),
]
"""The plugin's `admin` role as the service account needs it: the control topics only
(its data rights come from the BAL's `bal:service` role)."""
DEFAULT_ACL_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
PLUGIN_PATHS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)
STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)
"""Loaded before any fork: the child only calls into it."""


class MosquittoUnavailable(RuntimeError):
    """Mosquitto is not installed or would not start."""


@dataclass(frozen=True)
class MosquittoConfig:
    """Where the node's Mosquitto lives and what it listens on."""

    directory: Path
    bind: str
    port: int
    """The public plain-MQTT port (not opened under TLS)."""
    tls_port: int
    tls: tuple[Path, Path] | None
    service_password: str
    socket_path: Path
    """The node's own way in: a Unix socket in a directory only the node's user reaches."""
    binary: str | None = None
    autosave_changes: int = 1
    """Changes between two saves of Mosquitto's state (BAL_MOSQUITTO_AUTOSAVE)."""
    journal: bool = True
    """Journal each ingest publish before its PUBACK (BAL_MOSQUITTO_JOURNAL)."""
    journal_fsync: bool = False
    """Flush each journal record to disk: also survives power loss, one flush per message."""
    journal_segment_bytes: int = 64 * 1024 * 1024

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"


def find_binary(configured: str | None = None) -> str:
    for candidate in (configured, "mosquitto", "/usr/sbin/mosquitto"):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise MosquittoUnavailable(
        "mosquitto is not installed (apt-get install mosquitto); `make run` installs it"
    )


def find_plugin() -> Path:
    for pattern in PLUGIN_PATHS:
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found:
            return found[0]
    raise MosquittoUnavailable("Mosquitto's dynamic security plugin is missing")


def dynsec_client(username: str, password: str, role: str) -> dict[str, object]:
    """A plugin client entry with the plugin's own hash (PBKDF2-SHA512, 12-byte salt)."""
    salt = os.urandom(12)
    iterations = 101
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return {
        "username": username,
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
        "roles": [{"rolename": role}],
    }


def initial_dynsec_state(service_password: str) -> dict[str, object]:
    """What the plugin holds before the BAL's first sync: the service account alone,
    with the roles the sync would give it (a role given later would disconnect the
    sync's own connection), everything else denied."""

    def role(name: str, acls: list[tuple[str, str]]) -> dict[str, object]:
        entries = [
            {"acltype": kind, "topic": topic, "priority": 0, "allow": True} for kind, topic in acls
        ]
        return {"rolename": name, "acls": entries}

    service = dynsec_client(SERVICE_USERNAME, service_password, "admin")
    service["roles"] = [{"rolename": "admin"}, {"rolename": SERVICE_ROLE}]
    service_acls = sorted((ACL_TYPE[rule.action], rule.topic_filter) for rule in SERVICE_RULES)
    return {
        "defaultACLAccess": DEFAULT_ACL_ACCESS,
        "clients": [service],
        "groups": [],
        "roles": [role("admin", ADMIN_ROLE_ACLS), role(SERVICE_ROLE, service_acls)],
    }


def render_config(
    config: MosquittoConfig,
    plugin: Path,
    user: str,
    journal_plugin: Path | None = None,
    throttle_plugin: Path | None = None,
) -> str:
    """mosquitto.conf for the node's broker; rewritten at every start from settings."""
    directory = config.directory.resolve()
    lines = [
        "# Written by `bal up` at every start; edit the BAL's settings instead.",
        f"pid_file {directory}/mosquitto.pid",
        f"user {user}",
        "per_listener_settings false",
        "allow_anonymous false",
    ]
    if throttle_plugin is not None:
        lines += [
            "# Failed logins slow down (before Dynamic Security looks at a password)",
            f"plugin {throttle_plugin.resolve()}",
            f"plugin_opt_exempt {SERVICE_USERNAME}",
        ]
    lines += [
        f"plugin {plugin}",
        f"plugin_opt_config_file {directory}/dynamic-security.json",
    ]
    if journal_plugin is not None:
        lines += [
            "# Each ingest publish is on record before its PUBACK",
            f"plugin {journal_plugin.resolve()}",
            f"plugin_opt_dir {directory}/journal",
            f"plugin_opt_segment_bytes {config.journal_segment_bytes}",
            f"plugin_opt_fsync {'true' if config.journal_fsync else 'false'}",
        ]
    lines += [
        "",
        "# Nothing acknowledged is dropped: save after every change, queue without limit",
        "persistence true",
        f"persistence_location {directory}/",
        "autosave_on_changes true",
        f"autosave_interval {config.autosave_changes}",
        "max_queued_messages 10000000",
        "max_inflight_messages 0",
        "queue_qos0_messages true",
        "",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages false",
        "",
        "# The node's own connections: a Unix socket in a private directory",
        f"listener 0 {config.socket_path}",
        "",
        "# Devices and users: the client id is the login, so a session is its login's",
    ]
    if config.tls is None:
        lines += [f"listener {config.port} {config.bind}", "use_username_as_clientid true"]
    else:
        cert, key = config.tls
        lines += [
            f"listener {config.tls_port} {config.bind}",
            "use_username_as_clientid true",
            f"certfile {cert.resolve()}",
            f"keyfile {key.resolve()}",
        ]
    return "\n".join(lines) + "\n"


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the node's supervisor thread dies."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedMosquitto:
    """Starts, watches and stops the node's Mosquitto."""

    def __init__(self, config: MosquittoConfig) -> None:
        self.config = config
        self.directory = config.directory
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._supervisor: threading.Thread | None = None
        self._stop_timeout = STOP_TIMEOUT
        self.journal = MosquittoJournal(config.directory / "journal") if config.journal else None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def prepare(self) -> None:
        """Write the configuration and, on first start, the plugin's initial state."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        user = pwd.getpwuid(os.geteuid()).pw_name  # as root: `user root` keeps root
        private = self.config.socket_path.parent
        self._forget_earlier_socket_dir(private)
        private.mkdir(mode=0o700, exist_ok=True)
        stat = private.stat()
        if stat.st_uid != os.geteuid() or stat.st_mode & 0o077:
            raise MosquittoUnavailable(f"{private} is not a private directory of this user")
        try:
            throttle_plugin = build_plugin("bal_throttle", self.directory)
            journal_plugin = None
            if self.journal is not None:
                journal_plugin = build_plugin("bal_journal", self.directory)
                self.journal.prepare()
        except PluginBuildError as error:
            raise MosquittoUnavailable(str(error)) from error
        conf = self.directory / "mosquitto.conf"
        conf.write_text(
            render_config(self.config, find_plugin(), user, journal_plugin, throttle_plugin)
        )
        conf.chmod(0o600)
        state = self.directory / "dynamic-security.json"
        if not state.exists():
            state.write_text(json.dumps(initial_dynsec_state(self.config.service_password)))
            state.chmod(0o600)

    def _forget_earlier_socket_dir(self, private: Path) -> None:
        """Remove the socket directory of this data dir's previous broker (a node killed
        with -9 cannot), and note the new one."""
        marker = self.directory / "socket-dir"
        if marker.exists():
            earlier = Path(marker.read_text().strip())
            ours = earlier.parent == private.parent and earlier.name.startswith("bal-mqtt-")
            if ours and earlier != private:
                shutil.rmtree(earlier, ignore_errors=True)
        marker.write_text(f"{private}\n")

    def start(self, timeout: float = 15.0) -> None:
        """Start Mosquitto and its supervisor; returns once it accepts connections."""
        binary = find_binary(self.config.binary)
        self.prepare()
        self._stop_leftover()
        self._stopping.clear()
        self._supervisor = threading.Thread(
            target=self._supervise, args=(binary,), name="bal-mosquitto", daemon=True
        )
        self._supervisor.start()
        if not self._started.wait(timeout):
            self.stop()
            raise MosquittoUnavailable(f"mosquitto did not start: {self.log_tail()}")
        if self._start_error is not None:
            self.stop()
            raise MosquittoUnavailable(str(self._start_error))

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (Mosquitto saves its state), SIGKILL if it does not exit in time."""
        self._stop_timeout = timeout
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout + 5)
            self._supervisor = None
        shutil.rmtree(self.config.socket_path.parent, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        path = self.directory / "mosquitto.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # the supervisor thread: it spawns every child, so the parent-death signal is tied
    # to a thread that lives as long as the broker should

    def _supervise(self, binary: str) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                self._spawn(binary)
            except Exception as error:
                if not self._started.is_set():  # the first start: `start` reports it
                    self._start_error = error
                    self._started.set()
                    return
                log.error("mosquitto did not come back (%s); retrying in %.1f s", error, delay)
            else:
                process = self._process
                assert process is not None
                while not self._stopping.wait(0.1):
                    if process.poll() is not None:
                        break
                if self._stopping.is_set():
                    self._terminate(process, self._stop_timeout)
                    return
                self.restarts += 1
                metrics.BROKER_RESTARTS.inc()
                log.error(
                    "mosquitto exited with %s; restarting in %.1f s\n%s",
                    process.returncode,
                    delay,
                    self.log_tail(5),
                )
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 5.0)

    def _spawn(self, binary: str) -> None:
        if self.journal is not None and (orphans := self.journal.close_orphans()):
            log.warning("closed %d journal segment(s) of a mosquitto that died", orphans)
        descriptor = os.open(
            self.directory / "mosquitto.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
        )
        log_file = os.fdopen(descriptor, "ab")
        self._process = subprocess.Popen(
            [binary, "-c", str(self.directory / "mosquitto.conf")],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            close_fds=True,
        )
        log_file.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise MosquittoUnavailable(
                    f"mosquitto exited with {self._process.returncode}: {self.log_tail()}"
                )
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.settimeout(0.2)
                    probe.connect(str(self.config.socket_path))
                    self._started.set()
                    return
            except OSError:
                time.sleep(0.05)
        self._terminate(self._process)
        raise MosquittoUnavailable(f"mosquitto did not listen: {self.log_tail()}")

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("mosquitto did not stop in %.0f s; killing it", timeout)
            process.kill()
            process.wait()

    def _stop_leftover(self) -> None:
        """A Mosquitto of this data directory still running (its node died without the
        parent-death signal reaching it): stop it so that it saves and frees the ports."""
        pid_file = self.directory / "mosquitto.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return
        conf = str(self.directory / "mosquitto.conf").encode()
        if not any(part.endswith(b"mosquitto") for part in cmdline[:1]) or conf not in cmdline:
            return
        log.warning("stopping a mosquitto (pid %d) left over from an earlier run", pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


def private_socket_path() -> Path:
    """A Unix socket path in a directory with an unguessable name, made 0700 when the
    broker starts; short enough for the 108-byte limit wherever the data dir lies."""
    return Path(tempfile.gettempdir()) / f"bal-mqtt-{secrets.token_hex(8)}" / "mqtt.sock"
