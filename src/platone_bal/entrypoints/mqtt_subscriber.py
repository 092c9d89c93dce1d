"""Ingest from Mosquitto (the node's own or an outside one): a paho subscriber on `platone/#`.

Nothing acknowledged may be lost, so the subscriber:

- keeps a persistent MQTT 5 session (fixed client id, clean start off, a session that
  never expires), so what is published while the BAL is down or restarting is queued
  for it by the broker;
- acknowledges each QoS 1 message only after ingest committed it, and never an
  acknowledgment that belongs to an earlier connection (after a reconnect the broker
  sends unacknowledged messages again, and may reuse their packet ids for others);
- asks the broker for at most `RECEIVE_MAXIMUM` unacknowledged messages at a time, so
  the node's memory holds a bounded backlog and the rest waits, persisted, in the broker.
  Small on purpose: Mosquitto saves a message when it queues it, not when it sends it
  into this window, so the window is what a broker crash could lose unless it already
  sits in the node's socket; 100 messages do (with a window of 10,000 a Mosquitto
  SIGKILL while the node lagged lost 463 of 500 acknowledged messages). It is also
  faster on the node's own broker, whose saves then stay small;
- on shutdown stops taking messages (`pause`), lets ingest write and acknowledge what it
  has, then disconnects: what it did not take is delivered again at the next start.

The producer of a message is the NAME of its topic: the broker's ACL (Dynamic
Security) is what confines each producer to `platone/NAME`.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from platone_bal.adapters.paho_client import BrokerAddress, paho_client
from platone_bal.domain.messages import Channel, MessageRecord
from platone_bal.services.ingest import Delivery, IngestService, now

log = logging.getLogger(__name__)

INGRESS_FILTER = "platone/#"


def ingress_filter(shared_group: str | None) -> str:
    """`platone/#`, or its MQTT 5 shared subscription when nodes split the ingest."""
    return f"$share/{shared_group}/{INGRESS_FILTER}" if shared_group else INGRESS_FILTER


RECEIVE_MAXIMUM = 100
"""Unacknowledged messages the broker may have out to the BAL at once."""
SESSION_NEVER_EXPIRES = 0xFFFFFFFF


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
        receive_maximum: int = RECEIVE_MAXIMUM,
        shared_group: str | None = None,
    ) -> None:
        address = BrokerAddress.parse(url)
        self.filter = ingress_filter(shared_group)
        self._other_filter = INGRESS_FILTER if shared_group else None
        """The filter a session switched to shared ingest may still hold: dropped, or
        each message would come twice."""
        self.host, self.port = address.host, address.port
        self.ingest = ingest
        self.receive_maximum = receive_maximum
        self.subscribed = threading.Event()
        self._refusal: str | None = None
        self._paused = False
        self._connection = 0
        """Counts lost connections; an ack is sent only on the connection it belongs to."""
        self._ack_lock = threading.Lock()
        self._client = paho_client(
            address,
            username,
            password,
            client_id=client_id,
            clean_session=None,
            manual_ack=True,
            ca_file=ca_file,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; raises if the broker refuses or cannot be reached."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
        properties.ReceiveMaximum = self.receive_maximum
        self._client.connect(
            self.host, self.port, keepalive=30, clean_start=False, properties=properties
        )
        self._client.loop_start()
        deadline = time.monotonic() + timeout
        while not self.subscribed.wait(0.05):
            if self._refusal is not None or time.monotonic() > deadline:
                self.stop()
                raise ConnectionError(
                    f"could not subscribe to {self.filter} on {self.host}:{self.port}: "
                    f"{self._refusal or 'no answer'}"
                )

    def pause(self) -> None:
        """Take no more messages: those arriving from now on stay unacknowledged and
        the broker delivers them again after the next start."""
        self._paused = True

    def stop(self) -> None:
        """Disconnect; acknowledgments already given are sent before the DISCONNECT."""
        self._paused = True
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _: Any, __: Any, reason: Any, ___: Any) -> None:
        if reason.is_failure:
            self._refusal = f"connection refused ({reason})"
            log.error("broker refused the ingest subscriber: %s", reason)
            return
        if self._other_filter is not None:
            client.unsubscribe(self._other_filter)
        client.subscribe(self.filter, qos=1)

    def _on_subscribe(self, _: mqtt.Client, __: Any, ___: Any, reasons: Any, ____: Any) -> None:
        if all(not code.is_failure for code in reasons):
            self.subscribed.set()
        else:
            self._refusal = f"subscription refused ({reasons})"
            log.error("broker refused the subscription to %s: %s", self.filter, reasons)

    def _on_disconnect(self, *args: Any) -> None:
        with self._ack_lock:
            self._connection += 1
        self.subscribed.clear()
        if not self._paused:
            log.warning("ingest subscriber disconnected; paho reconnects")

    def _on_message(self, client: mqtt.Client, _: Any, message: mqtt.MQTTMessage) -> None:
        if self._paused:
            return
        mid, qos, connection = message.mid, message.qos, self._connection

        def ack(_: MessageRecord) -> None:
            with self._ack_lock:
                if connection == self._connection:
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
