"""The embedded MQTT broker (amqtt, MQTT 3.1.1) with the BAL's own auth and ACL.

Clients log in with their BAL username and password (argon2 in the store; no anonymous
access). A producer may publish only under `platone/NAME`. Every publish, allowed or
not, is handed to ingest in-process: allowed ones become readings, refused ones become
rejection rows with their reason (amqtt itself drops refused publishes silently).

Data access over MQTT goes to the audit log like HTTP access: every subscription
(allowed or refused) as it is decided, and the messages each user received, counted
per producer and written once a second (`AUDIT_FLUSH`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
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
from platone_bal.services.audit_trail import AuditTrail
from platone_bal.services.devices import DeviceService
from platone_bal.services.grants import GrantService
from platone_bal.services.ingest import Delivery, IngestService, now
from platone_bal.services.users import UserService

log = logging.getLogger(__name__)


ACCESS_TTL = 1.0
"""Seconds a consumer's computed access is reused (grant changes invalidate it at once;
this bounds how late an expiry is noticed)."""
AUDIT_FLUSH = 1.0
"""Seconds between two writes of delivery counts to the audit log."""


def topic_owner(topic: str) -> str | None:
    """NAME of a topic or filter under platone/NAME or certified/NAME."""
    levels = topic.split("/")
    if len(levels) < 2 or levels[0] not in ("platone", "certified"):
        return None
    return levels[1] if levels[1] not in ("", "+", "#") else None


class BrokerGate:
    """What the plugins share: who is logged in on which client id, and where data goes."""

    def __init__(
        self,
        users: UserService,
        ingest: IngestService,
        grants: GrantService,
        devices: DeviceService,
        audit: AuditTrail | None = None,
    ) -> None:
        self.users = users
        self.ingest = ingest
        self.grants = grants
        self.devices = devices
        self.audit = audit
        self._delivered: Counter[tuple[str, str]] = Counter()
        """(user, producer) -> messages received since the last flush."""
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

    def decided(self, session: Session, topic: str, action: Action, allowed: bool) -> None:
        """Note a subscription or a delivery for the audit log."""
        if self.audit is None or action is Action.PUBLISH:
            return
        username, _ = self.who(session.client_id)
        owner = topic_owner(topic)
        if action is Action.SUBSCRIBE:
            what = "subscribe" if allowed else "subscribe.refused"
            producers = [owner] if owner else []
            self.audit.record(username or "anonymous", "mqtt", what, producers, topic, 0)
        elif allowed and username is not None and owner is not None:
            self._delivered[(username, owner)] += 1

    def take_deliveries(self) -> Counter[tuple[str, str]]:
        """The counts since the last call (on the broker's event loop, which counts)."""
        delivered, self._delivered = self._delivered, Counter()
        return delivered

    def write_deliveries(self, delivered: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
        """One audit entry per user and producer; returns what could not be written,
        for the caller to count again so it goes with the next write."""
        if self.audit is None:
            return Counter()
        pending = sorted(delivered.items())
        try:
            while pending:
                (username, producer), count = pending[0]
                query = f"certified/{producer}/#"
                self.audit.record(username, "mqtt", "readings.deliver", [producer], query, count)
                pending.pop(0)
        except Exception:
            log.exception("writing MQTT deliveries to the audit log failed; retrying")
        return Counter(dict(pending))

    def count_again(self, unwritten: Counter[tuple[str, str]]) -> None:
        self._delivered.update(unwritten)

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
        allowed = gate.allowed(session, topic, Action(action))
        if Action(action) is not Action.SUBSCRIBE:
            gate.decided(session, topic, Action(action), allowed)
            return allowed
        try:
            await asyncio.to_thread(gate.decided, session, topic, Action(action), allowed)
        except Exception:
            log.exception("a subscription could not be audited; refused")
            return False  # an access that cannot be recorded is not granted
        return allowed


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
        audit: AuditTrail | None = None,
    ) -> None:
        self.gate = BrokerGate(users, ingest, grants, devices, audit)
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
        self._auditing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._broker = Broker(self._config)
        await self._broker.start()
        self._auditing = asyncio.create_task(self._flush_audit())

    async def stop(self) -> None:
        if self._auditing is not None:
            self._auditing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._auditing
            self._auditing = None
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
        await self._write_deliveries()

    async def _flush_audit(self) -> None:
        while True:
            await asyncio.sleep(AUDIT_FLUSH)
            await self._write_deliveries()

    async def _write_deliveries(self) -> None:
        """Counts are taken and merged back on the event loop, which counts them."""
        delivered = self.gate.take_deliveries()
        if delivered:
            unwritten = await asyncio.to_thread(self.gate.write_deliveries, delivered)
            self.gate.count_again(unwritten)

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
