"""Users, roles and who may publish where.

A producer NAME owns the topic tree `platone/NAME`; nobody else may publish there.
The same rule serves the embedded broker's ACL and the ingest check of any broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

INGRESS_ROOT = "platone"
EGRESS_ROOT = "certified"
GRANTED_ROOT = "granted"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class Role(StrEnum):
    ADMIN = "admin"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class Scope(StrEnum):
    """What a bearer token may be used for (OAuth2 scopes)."""

    READ = "data:read"
    INGEST = "data:ingest"
    GRANTS = "grants:write"
    """Request, accept, refuse and revoke grants: deciding who reads whose data is not
    reading, so a platform registered to read cannot give access away."""
    VERIFY = "verify"
    SETPOINTS = "setpoints"
    """Issue set points to Light Nodes (the DSO's technical platform; ARCHITECTURE §8)."""
    ADMIN = "admin"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.ADMIN: frozenset(Scope),
    Role.PRODUCER: frozenset({Scope.READ, Scope.INGEST, Scope.GRANTS, Scope.VERIFY}),
    Role.CONSUMER: frozenset({Scope.READ, Scope.GRANTS, Scope.VERIFY}),
}
"""The most a role's tokens can carry; what data a scope reaches depends on the user.
No scope implies another: a client gets exactly those it was registered with."""


@dataclass(frozen=True, slots=True)
class User:
    """A person or platform account. `password_hash` is argon2; `wallet` is EIP-55."""

    username: str
    role: Role
    password_hash: str
    wallet: str
    disabled: bool = False
    token_version: int = 0
    """Carried in every token and dashboard session of the user; raising it (sign-out,
    password change or reset, disabling) ends them all at once."""

    @property
    def topic(self) -> str | None:
        """The ingress topic of a producer; others have none."""
        return producer_topic(self.username) if self.role is Role.PRODUCER else None


@dataclass(frozen=True, slots=True)
class Client:
    """A platform (e.g. a DSO data server) that gets tokens with client credentials.

    It acts for the user it belongs to, with at most `scopes`, so every rule about
    whose data a user may touch applies to its tokens unchanged.
    """

    client_id: str
    name: str
    username: str
    scopes: frozenset[Scope]
    secret_hash: str
    disabled: bool = False
    token_version: int = 0
    """Carried in the client's tokens; raising it (disabling the client or its user)
    ends them all at once."""


def valid_username(name: str) -> bool:
    """Lower-case letters, digits, '_', '.', '-': safe as one MQTT topic level."""
    return bool(USERNAME.fullmatch(name))


def producer_topic(name: str) -> str:
    return f"{INGRESS_ROOT}/{name}"


_TOPIC_ESCAPES = str.maketrans({"%": "%25", "/": "%2F", "+": "%2B", "#": "%23", "\0": "%00"})


def topic_level(name: str) -> str:
    """A device id or measurand as one MQTT topic level, one to one: '%' and what MQTT
    reserves in topic names ('/', '+', '#', NUL) are percent-encoded. (Mapping them all
    to '_' let a grant for device `m_1` receive `m/1`, `m+1` and `m#1` too.)"""
    return name.translate(_TOPIC_ESCAPES)


def certified_topic(producer: str, device: str, measurand: str) -> str:
    """Where a certified reading is republished for its producer and admins:
    certified/NAME/DEVICE/MEASURAND."""
    return f"{EGRESS_ROOT}/{producer}/{topic_level(device)}/{topic_level(measurand)}"


def granted_topic(grant_id: int, producer: str, device: str, measurand: str) -> str:
    """Where a certified reading is delivered to the consumer of one grant that covers it:
    granted/ID/NAME/DEVICE/MEASURAND. The node decides per reading what a grant covers
    (devices, measurands, measurement-time window: exactly what REST shows), and the
    broker lets a consumer read `granted/ID/#` only while grant ID is active."""
    return f"{GRANTED_ROOT}/{grant_id}/{producer}/{topic_level(device)}/{topic_level(measurand)}"


def topic_producer(topic: str) -> str | None:
    """NAME of `platone/NAME` or `platone/NAME/...`, or None for any other topic."""
    parts = topic.split("/")
    if len(parts) < 2 or parts[0] != INGRESS_ROOT or not parts[1]:
        return None
    return parts[1]


def publish_refusal(username: str | None, role: Role | None, topic: str) -> str | None:
    """Why `username` may not publish on `topic`, or None when it may."""
    if username is None:
        return "anonymous publishing is not allowed"
    if role is not Role.PRODUCER:
        return f"user {username!r} is not a producer"
    if topic_producer(topic) != username:
        return f"producer {username!r} may publish only under {producer_topic(username)}"
    return None


def subscription_refusal(username: str | None, role: Role | None, topic_filter: str) -> str | None:
    """Why `username` may not subscribe to (or receive on) `topic_filter`, or None.

    Admins may watch everything; a producer only its own trees (platone/NAME and
    certified/NAME). Consumers get data
    through grants, which are not granted by this rule: fail closed.
    """
    if username is None:
        return "anonymous subscriptions are not allowed"
    if role is Role.ADMIN:
        return None
    if role is Role.PRODUCER:
        for own in (producer_topic(username), f"{EGRESS_ROOT}/{username}"):
            if topic_filter == own or topic_filter.startswith(own + "/"):
                return None
    return f"user {username!r} may not subscribe to {topic_filter!r}"
