"""Who may do what on an external broker, as accounts and roles of topic rules.

The embedded broker asks the store at every CONNECT, SUBSCRIBE and delivery. An
external broker (Mosquitto's Dynamic Security) holds its own copy of the rules; this
module computes what that copy must be at a moment `now`, from the same users,
devices and grants, so both brokers enforce one policy:

- the BAL's service account publishes `certified/#` and `granted/#` and reads
  `platone/#`;
- an admin may subscribe to and receive everything;
- a producer NAME publishes under `platone/NAME` and reads its own `platone/NAME`
  and `certified/NAME` trees;
- a device login NAME/DEVICE publishes only under `platone/NAME/DEVICE` and reads its
  set points on `setpoints/NAME/DEVICE` (NAME reads all of `setpoints/NAME/#`; the
  service account publishes them);
- a consumer holds one role per grant that is active now (accepted, unexpired): it may
  subscribe to and receive `granted/ID/#`, where the node delivers exactly the readings
  the grant covers (devices, measurands and the window of measurement time, decided per
  reading by the node, as REST decides them; topic rules cannot state a time window).
  Receiving is checked per message, so a subscription kept in a persistent session gets
  nothing once the role is gone.

Everything else is denied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from platone_bal.domain.devices import Device, device_login
from platone_bal.domain.grants import Grant
from platone_bal.domain.setpoints import SETPOINT_ROOT, setpoint_topic
from platone_bal.domain.users import EGRESS_ROOT, GRANTED_ROOT, INGRESS_ROOT, Role, User


class Action(StrEnum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    RECEIVE = "receive"


@dataclass(frozen=True, order=True, slots=True)
class TopicRule:
    """`action` is allowed on topics matching `topic_filter` (MQTT wildcards)."""

    action: Action
    topic_filter: str


@dataclass(frozen=True, slots=True)
class Account:
    """A broker login: a user's username or a device's NAME/DEVICE."""

    username: str
    roles: frozenset[str]
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class BrokerPolicy:
    accounts: Mapping[str, Account]
    roles: Mapping[str, frozenset[TopicRule]]
    grant_producers: Mapping[str, str] = field(default_factory=dict)
    """Grant role -> the producer whose data it opens (for the access log)."""


SERVICE_ROLE = "bal:service"
ADMIN_ROLE = "bal:admin"

SERVICE_RULES = frozenset(
    {
        TopicRule(Action.PUBLISH, f"{EGRESS_ROOT}/#"),
        TopicRule(Action.PUBLISH, f"{GRANTED_ROOT}/#"),
        TopicRule(Action.PUBLISH, f"{SETPOINT_ROOT}/#"),
        TopicRule(Action.SUBSCRIBE, f"{INGRESS_ROOT}/#"),
        # nodes that split the ingest (BAL_MQTT_SHARED_GROUP); Mosquitto's Dynamic
        # Security checks a shared subscription's whole filter, $share/GROUP/ included
        TopicRule(Action.SUBSCRIBE, f"$share/+/{INGRESS_ROOT}/#"),
        TopicRule(Action.RECEIVE, f"{INGRESS_ROOT}/#"),
    }
)


def producer_role(name: str) -> str:
    return f"bal:producer:{name}"


def device_role(producer: str, device_id: str) -> str:
    return f"bal:device:{producer}/{device_id}"


def grant_role(grant_id: int) -> str:
    return f"bal:grant:{grant_id}"


def _reading(*filters: str) -> set[TopicRule]:
    return {TopicRule(a, f) for f in filters for a in (Action.SUBSCRIBE, Action.RECEIVE)}


def broker_policy(
    users: Iterable[User], devices: Iterable[Device], grants: Iterable[Grant], now: datetime
) -> BrokerPolicy:
    """The accounts and roles the broker must hold at `now`."""
    roles: dict[str, frozenset[TopicRule]] = {
        SERVICE_ROLE: SERVICE_RULES,
        ADMIN_ROLE: frozenset(_reading("#")),
    }
    held: dict[str, set[str]] = {}
    grant_producers: dict[str, str] = {}
    disabled: dict[str, bool] = {}
    producers: set[str] = set()
    for user in users:
        disabled[user.username] = user.disabled
        held[user.username] = set()
        if user.role is Role.ADMIN:
            held[user.username].add(ADMIN_ROLE)
        elif user.role is Role.PRODUCER:
            producers.add(user.username)
            own = f"{INGRESS_ROOT}/{user.username}/#"
            role = producer_role(user.username)
            rules = _reading(
                own, f"{EGRESS_ROOT}/{user.username}/#", f"{SETPOINT_ROOT}/{user.username}/#"
            )
            roles[role] = frozenset(rules | {TopicRule(Action.PUBLISH, own)})
            held[user.username].add(role)
    for device in devices:
        if device.secret_hash is None or device.producer not in producers:
            continue
        login = device_login(device.producer, device.device_id)
        role = device_role(device.producer, device.device_id)
        own_setpoints = _reading(setpoint_topic(device.producer, device.device_id))
        roles[role] = frozenset({TopicRule(Action.PUBLISH, f"{device.topic}/#"), *own_setpoints})
        held[login] = {role}
        disabled[login] = device.disabled or disabled.get(device.producer, True)
    for grant in grants:
        if grant.consumer not in held or not grant.active(now):
            continue
        role = grant_role(grant.id)
        roles[role] = frozenset(_reading(f"{GRANTED_ROOT}/{grant.id}/#"))
        grant_producers[role] = grant.producer
        held[grant.consumer].add(role)
    accounts = {
        name: Account(name, frozenset(names), disabled[name]) for name, names in held.items()
    }
    return BrokerPolicy(accounts, roles, grant_producers)
