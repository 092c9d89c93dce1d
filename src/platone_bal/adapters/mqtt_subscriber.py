"""Ingest from an external broker (Mosquitto): a paho subscriber on `platone/#`.

The subscriber keeps a persistent session (clean_session false, fixed client id) and
acknowledges each QoS 1 message only after ingest committed it, so messages published
while the BAL is down or crashing are delivered again, and stored once.
The producer of a message is the NAME of its topic: the broker's ACL (Mosquitto dynamic
security) is what confines each producer to `platone/NAME`.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from platone_bal.adapters.paho_client import BrokerAddress, paho_client
from platone_bal.domain.messages import Channel, MessageRecord
from platone_bal.services.ingest import Delivery, IngestService, now

log = logging.getLogger(__name__)

INGRESS_FILTER = "platone/#"


class MqttSubscriber:
    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        client_id: str,
        ingest: IngestService,
        ca_file: Path | None = None,
    ) -> None:
        address = BrokerAddress.parse(url)
        self.host, self.port = address.host, address.port
        self.ingest = ingest
        self.subscribed = threading.Event()
        self._refusal: str | None = None
        self._client = paho_client(
            address,
            username,
            password,
            client_id=client_id,
            clean_session=False,
            manual_ack=True,
            ca_file=ca_file,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; raises if the broker refuses or cannot be reached."""
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        deadline = time.monotonic() + timeout
        while not self.subscribed.wait(0.05):
            if self._refusal is not None or time.monotonic() > deadline:
                self.stop()
                raise ConnectionError(
                    f"could not subscribe to {INGRESS_FILTER} on {self.host}:{self.port}: "
                    f"{self._refusal or 'no answer'}"
                )

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _: Any, __: Any, reason: Any, ___: Any) -> None:
        if reason.is_failure:
            self._refusal = f"connection refused ({reason})"
            log.error("broker refused the ingest subscriber: %s", reason)
            return
        client.subscribe(INGRESS_FILTER, qos=1)

    def _on_subscribe(self, _: mqtt.Client, __: Any, ___: Any, reasons: Any, ____: Any) -> None:
        if all(not code.is_failure for code in reasons):
            self.subscribed.set()
        else:
            self._refusal = f"subscription refused ({reasons})"
            log.error("broker refused the subscription to %s: %s", INGRESS_FILTER, reasons)

    def _on_disconnect(self, *args: Any) -> None:
        self.subscribed.clear()
        log.warning("ingest subscriber disconnected; paho reconnects")

    def _on_message(self, client: mqtt.Client, _: Any, message: mqtt.MQTTMessage) -> None:
        mid, qos = message.mid, message.qos

        def ack(_: MessageRecord) -> None:
            client.ack(mid, qos)

        self.ingest.submit(
            Delivery(
                channel=Channel.MQTT,
                topic=message.topic,
                payload=bytes(message.payload),
                received=now(),
                ack=ack if qos else None,
            )
        )
