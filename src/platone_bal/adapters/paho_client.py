"""One way to make a paho client for an external broker URL (mqtt:// or mqtts://)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    """A host name, or the socket's path for unix://."""
    port: int
    tls: bool
    unix: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme == "unix" and parts.path:
            return cls(parts.path, 1883, tls=False, unix=True)  # paho wants a port; unused
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(
                f"broker URL {url!r} is not mqtt://host:port, mqtts://host:port or unix:///path"
            )
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname, parts.port or (8883 if tls else 1883), tls)


def paho_client(
    address: BrokerAddress,
    username: str,
    password: str,
    *,
    client_id: str,
    clean_session: bool | None,
    manual_ack: bool = False,
    ca_file: Path | None = None,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
) -> mqtt.Client:
    """An MQTT client (3.1.1 unless told; with MQTT 5 the session is chosen at connect,
    so `clean_session` must be None) with credentials, TLS (verifying the broker) for
    mqtts://, and reconnects backing off up to 30 s."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=protocol,
        manual_ack=manual_ack,
        transport="unix" if address.unix else "tcp",
    )
    client.username_pw_set(username, password)
    if address.tls:
        client.tls_set(
            ca_certs=str(ca_file) if ca_file else None, tls_version=ssl.PROTOCOL_TLS_CLIENT
        )
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client
