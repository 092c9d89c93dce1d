"""A real Mosquitto from apt, started per test on a free port with password auth."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port, require_binary


class Mosquitto:
    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        self.binary = require_binary("mosquitto")
        self.passwd_tool = require_binary("mosquitto_passwd")
        self.workdir = workdir
        self.port = free_port()
        self.users = users
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        passwd = workdir / "passwd"
        for number, (username, password) in enumerate(users.items()):
            create = ["-c"] if number == 0 else []
            subprocess.run(
                [self.passwd_tool, *create, "-b", str(passwd), username, password], check=True
            )
        (workdir / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {passwd}\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "max_inflight_messages 1000\n"
            "max_queued_messages 100000\n"
        )
        if os.geteuid() == 0:
            # Test dirs live under root-only temp dirs; keep root rather than chown the tree.
            with (workdir / "mosquitto.conf").open("a") as conf:
                conf.write("user root\n")
            passwd.chmod(0o600)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.workdir / "mosquitto.conf")], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(
            f"mosquitto did not start: {(self.workdir / 'mosquitto.log').read_text()}"
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
