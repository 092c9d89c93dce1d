"""An MQTT subscriber for tests: what it received, its SUBACK codes, its disconnects."""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as mqtt

from platone_bal.simulate import connect
from tests.integration.nodes import wait_for


class Subscriber:
    """A paho subscriber collecting certified messages, or the SUBACK refusal."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        topic: str,
        messages: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> None:
        self.messages = [] if messages is None else messages
        self.codes: list[Any] = []
        self.disconnects = 0
        self._lock = threading.Lock()
        # A persistent session: QoS 1 messages sent while it is away wait in the broker.
        self.client = connect(
            url, username, password, client_id=f"watch-{username}", clean_session=False
        )
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self.codes.extend(codes)
        self.client.subscribe(topic, qos=1)
        wait_for(lambda: bool(self.codes), what="SUBACK")

    def _on_message(self, _: mqtt.Client, __: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, json.loads(message.payload)))

    def _on_disconnect(self, *_: Any) -> None:
        self.disconnects += 1

    def received(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
