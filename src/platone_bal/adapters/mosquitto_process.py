"""The node's own Mosquitto: prepared, started and supervised by `bal up`.

The embedded default and production run the same broker, so they share one code path
and one set of tests. What it is configured to keep and how it is reached are in
`mosquitto_config`; what its Dynamic Security plugin holds at first start is in
`dynsec_bootstrap`; this module owns the process.

A supervisor thread restarts Mosquitto if it dies. The child gets SIGTERM when the node
dies, even by kill -9 (Linux parent-death signal), so it saves its state and frees the
ports; a child left over anyway is found through its pid file and stopped at the next
start.
"""

from __future__ import annotations

import ctypes
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
from pathlib import Path

from platone_bal import metrics
from platone_bal.adapters.dynsec_bootstrap import SERVICE_USERNAME, initial_dynsec_state
from platone_bal.adapters.mosquitto_config import MosquittoConfig, render_config
from platone_bal.adapters.mosquitto_install import (
    MosquittoUnavailable,
    find_binary,
    find_plugin,
)
from platone_bal.adapters.mosquitto_plugins import PluginBuildError, build_plugin
from platone_bal.adapters.mosquitto_plugins.journal import MosquittoJournal

__all__ = [
    "SERVICE_USERNAME",
    "ManagedMosquitto",
    "MosquittoConfig",
    "private_socket_path",
]
"""What the node's composition root (`app`) takes from here to run its broker."""

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)
"""Loaded before any fork: the child only calls into it."""


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
