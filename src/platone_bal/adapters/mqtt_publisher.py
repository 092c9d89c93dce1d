"""Publishing certified readings to an external broker (Mosquitto) at QoS 1."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from platone_bal.adapters.paho_client import BrokerAddress, paho_client

log = logging.getLogger(__name__)

ACK_TIMEOUT = 30.0


class MqttPublisher:
    """A CertifiedSink on its own connection (client id `<subscriber id>-egress`)."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        client_id: str,
        ca_file: Path | None = None,
    ) -> None:
        self.address = BrokerAddress.parse(url)
        self.connected = threading.Event()
        self._client = paho_client(
            self.address,
            username,
            password,
            client_id=client_id,
            clean_session=True,
            ca_file=ca_file,
        )
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = lambda *_: self.connected.clear()

    def start(self) -> None:
        """Connect in the background; publishing waits for the connection."""
        self._client.connect_async(self.address.host, self.address.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if not self.connected.wait(5):
            raise ConnectionError(f"not connected to {self.address.host}:{self.address.port}")
        infos = [self._client.publish(topic, payload, qos=1) for topic, payload in messages]
        deadline = time.monotonic() + ACK_TIMEOUT
        for info in infos:
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"publish failed: {mqtt.error_string(info.rc)}")
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise ConnectionError("the broker did not acknowledge the certified readings")

    def _on_connect(self, _: mqtt.Client, __: Any, ___: Any, reason: Any, ____: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the egress publisher: %s", reason)
            return
        self.connected.set()
