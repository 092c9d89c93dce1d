"""A real Mosquitto from apt, started per test on a free port.

By default it runs the Dynamic Security plugin, as a deployment with grants would:
the service account holds the plugin's admin role (as `mosquitto_ctrl dynsec init`
makes it) and every other given user is a client with one role, `test:open`, that
may publish, subscribe and receive anything: state the BAL must repair. With
`dynsec=False` it checks a plain password file and enforces no topic rules.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port, require_binary
from tests.integration.nodes import NodeThread

DYNSEC_PLUGIN = next(
    Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"),
    Path("/usr/lib/mosquitto_dynamic_security.so"),
)
ADMIN_ACLS = [
    ("publishClientSend", "$CONTROL/dynamic-security/#"),
    ("publishClientReceive", "$CONTROL/dynamic-security/#"),
    ("subscribePattern", "$CONTROL/dynamic-security/#"),
    ("publishClientReceive", "#"),
    ("subscribePattern", "#"),
    ("unsubscribePattern", "#"),
]
OPEN_ACLS = [("publishClientSend", "#"), ("publishClientReceive", "#"), ("subscribePattern", "#")]


def dynsec_client(username: str, password: str, role: str) -> dict[str, object]:
    """A client entry with the plugin's own hash: PBKDF2-SHA512, 101 rounds, 12-byte salt."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
    return {
        "username": username,
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": 101,
        "roles": [{"rolename": role}],
    }


def dynsec_role(name: str, acls: list[tuple[str, str]]) -> dict[str, object]:
    return {
        "rolename": name,
        "acls": [{"acltype": kind, "topic": topic, "allow": True} for kind, topic in acls],
    }


class Mosquitto:
    def __init__(
        self,
        workdir: Path,
        users: dict[str, str],
        *,
        service: str = "bal-service",
        dynsec: bool = True,
    ) -> None:
        self.binary = require_binary("mosquitto")
        self.workdir = workdir
        self.port = free_port()
        self.users = users
        self.service = service
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.dynsec_file = workdir / "dynamic-security.json"
        if dynsec:
            if not DYNSEC_PLUGIN.exists():
                raise RuntimeError(f"{DYNSEC_PLUGIN} is missing (apt-get install mosquitto)")
            clients = [
                dynsec_client(name, password, "admin" if name == service else "test:open")
                for name, password in users.items()
            ]
            config = {
                "clients": clients,
                "roles": [dynsec_role("admin", ADMIN_ACLS), dynsec_role("test:open", OPEN_ACLS)],
            }
            self.dynsec_file.write_text(json.dumps(config))
            auth = f"plugin {DYNSEC_PLUGIN}\nplugin_opt_config_file {self.dynsec_file}\n"
        else:
            passwd = workdir / "passwd"
            tool = require_binary("mosquitto_passwd")
            for number, (username, password) in enumerate(users.items()):
                create = ["-c"] if number == 0 else []
                subprocess.run([tool, *create, "-b", str(passwd), username, password], check=True)
            passwd.chmod(0o600)
            auth = f"password_file {passwd}\n"
        (workdir / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"{auth}"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "max_inflight_messages 1000\n"
            "max_queued_messages 100000\n"
        )
        if os.geteuid() == 0:
            # Test dirs live under root-only temp dirs; keep root rather than chown the tree.
            with (workdir / "mosquitto.conf").open("a") as conf:
                conf.write("user root\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def bal_node(self, data_dir: Path, **settings: object) -> NodeThread:
        """A BAL node on this broker, logged in as the service account."""
        return NodeThread(
            data_dir,
            broker="mosquitto",
            mqtt_url=self.url,
            mqtt_username=self.service,
            mqtt_password=self.users[self.service],
            **settings,
        )

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
