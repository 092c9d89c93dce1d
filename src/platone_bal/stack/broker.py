"""The stack's Mosquitto: TLS for devices, Dynamic Security, persistence that loses
nothing acknowledged, and a TLS listener of its own for the BAL nodes.

Devices log in on the public listener, where the client id is the login (a session is
its login's); the nodes log in as the service account on the nodes' listener, each
with its own session (BAL_MQTT_CLIENT_ID-NODE_NAME), which the public listener would
make one.
"""

from __future__ import annotations

import json
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from platone_bal.adapters.dynsec_bootstrap import initial_dynsec_state
from platone_bal.adapters.mosquitto_install import find_binary, find_plugin
from platone_bal.adapters.tls import ensure_self_signed


@dataclass(frozen=True)
class StackBroker:
    directory: Path
    device_port: int
    """mqtts:// for devices and people."""
    node_port: int
    """mqtts:// on 127.0.0.1 for the BAL nodes."""
    bind: str = "127.0.0.1"

    @property
    def config_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def pid_path(self) -> Path:
        return self.directory / "mosquitto.pid"

    @property
    def ca_file(self) -> Path:
        return self.directory / "tls" / "cert.pem"

    @property
    def node_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.node_port}"

    def command(self) -> list[str]:
        return [find_binary(None), "-c", str(self.config_path)]

    def prepare(self, service_password: str) -> None:
        """Config, certificate and (once) the plugin's first state; rewritten config at
        every start, the plugin's state kept (the BAL keeps it in step)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        cert, key = ensure_self_signed(self.directory / "tls", [self.bind])
        dynsec = self.directory / "dynamic-security.json"
        if not dynsec.exists():
            descriptor = os.open(dynsec, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(initial_dynsec_state(service_password), handle)
        directory = self.directory.resolve()
        user = pwd.getpwuid(os.geteuid()).pw_name  # as root, `user root` keeps root
        self.config_path.write_text(
            "\n".join(
                [
                    "# Written by `bal stack up` at every start.",
                    f"pid_file {self.pid_path.resolve()}",
                    f"user {user}",
                    "per_listener_settings false",
                    "allow_anonymous false",
                    f"plugin {find_plugin()}",
                    f"plugin_opt_config_file {dynsec.resolve()}",
                    "",
                    "# Nothing acknowledged is dropped: save after every change, queue all",
                    "persistence true",
                    f"persistence_location {directory}/",
                    "autosave_on_changes true",
                    "autosave_interval 1",
                    "max_queued_messages 10000000",
                    "max_inflight_messages 0",
                    "queue_qos0_messages true",
                    "",
                    f"log_dest file {directory}/mosquitto.log",
                    "connection_messages false",
                    "",
                    "# devices and people: the client id is the login",
                    f"listener {self.device_port} {self.bind}",
                    "use_username_as_clientid true",
                    f"certfile {cert.resolve()}",
                    f"keyfile {key.resolve()}",
                    "",
                    "# the BAL nodes, each with its own session",
                    f"listener {self.node_port} 127.0.0.1",
                    f"certfile {cert.resolve()}",
                    f"keyfile {key.resolve()}",
                    "",
                ]
            )
        )
