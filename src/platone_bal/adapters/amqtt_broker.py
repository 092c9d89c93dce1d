"""The embedded MQTT broker (amqtt, MQTT 3.1.1) with the BAL's own auth and ACL.

Clients log in with their BAL username and password (argon2 in the store; no anonymous
access). A producer may publish only under `platone/NAME`. Every publish, allowed or
not, is handed to ingest in-process: allowed ones become readings, refused ones become
rejection rows with their reason (amqtt itself drops refused publishes silently).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin, BaseTopicPlugin
from amqtt.session import ApplicationMessage, Session

from platone_bal.domain.devices import device_publish_refusal, parse_device_login
from platone_bal.domain.grants import Access
from platone_bal.domain.messages import Channel
from platone_bal.domain.users import Role, publish_refusal, subscription_refusal
from platone_bal.services.devices import DeviceService
from platone_bal.services.grants import GrantService
from platone_bal.services.ingest import Delivery, IngestService, now
from platone_bal.services.users import UserService

log = logging.getLogger(__name__)


ACCESS_TTL = 1.0
"""Seconds a consumer's computed access is reused (grant changes invalidate it at once;
this bounds how late an expiry is noticed)."""


class BrokerGate:
    """What the plugins share: who is logged in on which client id, and where data goes."""

    def __init__(
        self,
        users: UserService,
        ingest: IngestService,
        grants: GrantService,
        devices: DeviceService,
    ) -> None:
        self.users = users
        self.ingest = ingest
        self.grants = grants
        self.devices = devices
        self._access: dict[str, tuple[int, float, Access]] = {}
        # client id -> (username, role) of its last successful login. Entries are
        # overwritten, never removed: a late disconnect event must not erase a newer login.
        self.sessions: dict[str, tuple[str, Role | None]] = {}
        """client id -> (login, role); devices (login NAME/DEVICE) have no role."""

    async def authenticate(self, session: Session) -> bool:
        if not session.username or session.password is None or not session.client_id:
            log.warning("MQTT connect refused: no credentials (client %r)", session.client_id)
            return False
        if parse_device_login(session.username) is not None:
            device = await asyncio.to_thread(
                self.devices.authenticate, session.username, str(session.password)
            )
            if device is None:
                log.warning("MQTT connect refused for device %r", session.username)
                return False
            self.sessions[session.client_id] = (session.username, None)
            return True
        user = await asyncio.to_thread(
            self.users.authenticate, session.username, str(session.password)
        )
        if user is None:
            log.warning("MQTT connect refused for user %r: bad credentials", session.username)
            return False
        self.sessions[session.client_id] = (user.username, user.role)
        return True

    def who(self, client_id: str | None) -> tuple[str | None, Role | None]:
        return self.sessions.get(client_id or "", (None, None))

    @staticmethod
    def publish_refusal(username: str | None, role: Role | None, topic: str) -> str | None:
        device = parse_device_login(username)
        if device is not None:
            return device_publish_refusal(*device, topic)
        return publish_refusal(username, role, topic)

    def allowed(self, session: Session, topic: str, action: Action) -> bool:
        username, role = self.who(session.client_id)
        if action is Action.PUBLISH:
            return self.publish_refusal(username, role, topic) is None
        if parse_device_login(username) is not None:
            return False  # devices publish; they read nothing
        if subscription_refusal(username, role, topic) is None:
            return True
        if role is not Role.CONSUMER or username is None:
            return False
        # a consumer reads certified data through grants, checked again at every delivery
        access = self._consumer_access(username)
        if action is Action.SUBSCRIBE:
            return access.may_subscribe(topic)
        return access.may_receive(topic, self.grants.clock())

    def _consumer_access(self, username: str) -> Access:
        version, now = self.grants.version, time.monotonic()
        cached = self._access.get(username)
        if cached is not None and cached[0] == version and now - cached[1] < ACCESS_TTL:
            return cached[2]
        user = self.users.store.get_user(username)
        access = self.grants.access(user) if user is not None else Access(())
        self._access[username] = (version, now, access)
        return access

    def received(self, client_id: str, message: ApplicationMessage) -> None:
        username, role = self.who(client_id)
        self.ingest.submit(
            Delivery(
                channel=Channel.MQTT,
                topic=message.topic,
                payload=bytes(message.data or b""),
                received=now(),
                sender=username,
                refusal=self.publish_refusal(username, role, message.topic),
            )
        )


@dataclass
class _GateConfig:
    gate: Any = None


class BalAuthPlugin(BaseAuthPlugin):
    Config = _GateConfig

    async def authenticate(self, *, session: Session) -> bool | None:
        gate: BrokerGate = self.config.gate
        return await gate.authenticate(session)


class BalTopicPlugin(BaseTopicPlugin):
    Config = _GateConfig

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Any = None
    ) -> bool | None:
        if session is None or topic is None:
            return False
        gate: BrokerGate = self.config.gate
        return gate.allowed(session, topic, Action(action))


class BalIngressPlugin(BasePlugin[Any]):
    """Hands every received publish to ingest, before amqtt's ACL drops refused ones."""

    Config = _GateConfig

    async def on_broker_message_received(
        self, *, client_id: str, message: ApplicationMessage | None
    ) -> None:
        if message is not None and message.topic:
            gate: BrokerGate = self.config.gate
            gate.received(client_id, message)


class EmbeddedBroker:
    """amqtt listening on host:port (TLS only when `tls` names a cert and key), wired to
    the BAL's users and ingest."""

    def __init__(
        self,
        host: str,
        port: int,
        users: UserService,
        ingest: IngestService,
        grants: GrantService,
        devices: DeviceService,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.gate = BrokerGate(users, ingest, grants, devices)
        listener: dict[str, Any] = {"type": "tcp", "bind": f"{host}:{port}"}
        if tls is not None:
            listener.update(ssl=True, certfile=str(tls[0]), keyfile=str(tls[1]))
        self._config = {
            "listeners": {"default": listener},
            "plugins": {
                f"{__name__}.BalAuthPlugin": {"gate": self.gate},
                f"{__name__}.BalTopicPlugin": {"gate": self.gate},
                f"{__name__}.BalIngressPlugin": {"gate": self.gate},
            },
        }
        self._broker: Broker | None = None

    async def start(self) -> None:
        self._broker = Broker(self._config)
        await self._broker.start()

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None

    async def broadcast(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Queue messages for subscribers at QoS 1 (each subscriber's ACL still applies)."""
        if self._broker is None:
            raise ConnectionError("the embedded broker is not running")
        for topic, payload in messages:
            await self._broker.internal_message_broadcast(topic, payload, 1)

    def sink(self, loop: asyncio.AbstractEventLoop) -> BrokerSink:
        """A CertifiedSink for threads outside the broker's event loop."""
        return BrokerSink(self, loop)


class BrokerSink:
    """Publishes into an EmbeddedBroker from another thread."""

    def __init__(self, broker: EmbeddedBroker, loop: asyncio.AbstractEventLoop) -> None:
        self._broker = broker
        self._loop = loop

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        future = asyncio.run_coroutine_threadsafe(self._broker.broadcast(messages), self._loop)
        future.result(timeout=30)
