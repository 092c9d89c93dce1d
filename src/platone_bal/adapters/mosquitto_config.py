"""What the node's own Mosquitto listens on and keeps, and its `mosquitto.conf`,
rendered from the BAL's settings at every start.

Mosquitto keeps its configuration, Dynamic Security state and persistence in
`DATA_DIR/mosquitto/`. It is configured so that nothing it acknowledged is dropped
(ARCHITECTURE §7, README "What is guaranteed"):

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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from platone_bal.adapters.dynsec_bootstrap import SERVICE_USERNAME


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
