"""Mosquitto's Dynamic Security plugin, kept equal to the BAL's broker policy.

The plugin is driven by JSON commands on `$CONTROL/dynamic-security/v1`, answered on
`.../response`. Every `apply` reads the plugin's whole state (one request), computes
the commands that turn it into the policy — creating, repairing and deleting what
differs, so drift made behind the BAL's back is repaired too — and sends them as one
batch. Order matters: a role is taken from a client before it is deleted, because in
Mosquitto 2.0 removing a client's role disconnects that client (and only it) while
deleting a role disconnects nobody.

The plugin stores its own password hashes and takes passwords only in clear, so the
BAL can set a password only when it sees one (user creation, reset, change; device
credentials). A client the BAL has to create otherwise gets no password: nobody can
log in with it until its password is set again. Fail closed.

The BAL's own service account (the one it connects with, holding the plugin's admin
role) is never deleted or disabled; the BAL only adds its service role to it.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from platone_bal.adapters.paho_client import BrokerAddress, paho_client
from platone_bal.domain.broker_policy import SERVICE_ROLE, Action, BrokerPolicy, TopicRule

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
BATCH = 200
"""Commands per control message; a repair of thousands of clients goes in several."""

ACL_TYPE = {
    Action.PUBLISH: "publishClientSend",
    Action.SUBSCRIBE: "subscribePattern",
    Action.RECEIVE: "publishClientReceive",
}
RULE_OF = {acl_type: action for action, acl_type in ACL_TYPE.items()}
DEFAULT_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
"""Deny by default; receiving too, so that an old subscription gets nothing unless a
role allows the topic at delivery time."""

Acl = tuple[str, str, bool]
"""(acltype, topic, allow) as the plugin lists it."""
Command = dict[str, Any]


class DynsecError(RuntimeError):
    """The plugin did not answer, or refused a command the policy needs."""


class DynsecRefused(DynsecError, PermissionError):
    """The broker refused the service account: retrying will not help."""


@dataclass
class DynsecClient:
    roles: set[str]
    disabled: bool
    groups: set[str]


@dataclass
class DynsecState:
    """What the plugin holds, as read from its listings."""

    clients: dict[str, DynsecClient] = field(default_factory=dict)
    roles: dict[str, set[Acl]] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    default_access: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def from_responses(cls, responses: Sequence[Mapping[str, Any]]) -> DynsecState:
        state = cls()
        for response in responses:
            if response.get("error"):
                raise DynsecError(f"{response.get('command')}: {response['error']}")
            data = response.get("data", {})
            for client in data.get("clients", []):
                state.clients[client["username"]] = DynsecClient(
                    roles={r["rolename"] for r in client.get("roles", [])},
                    disabled=bool(client.get("disabled", False)),
                    groups={g["groupname"] for g in client.get("groups", [])},
                )
            for role in data.get("roles", []):
                state.roles[role["rolename"]] = {
                    (a["acltype"], a["topic"], bool(a["allow"])) for a in role.get("acls", [])
                }
            state.groups.update(g["groupname"] for g in data.get("groups", []))
            for acl in data.get("acls", []):
                state.default_access[acl["acltype"]] = bool(acl["allow"])
        return state


READ_STATE: list[Command] = [
    {"command": "listClients", "verbose": True},
    {"command": "listRoles", "verbose": True},
    {"command": "listGroups", "verbose": True},
    {"command": "getDefaultACLAccess"},
]


def _acls(rules: frozenset[TopicRule]) -> set[Acl]:
    return {(ACL_TYPE[rule.action], rule.topic_filter, True) for rule in rules}


def plan(actual: DynsecState, policy: BrokerPolicy, service_account: str) -> list[Command]:
    """The commands that make `actual` equal to `policy` (empty when it already is)."""
    commands: list[Command] = []
    if actual.default_access != DEFAULT_ACCESS:
        acls = [{"acltype": t, "allow": allow} for t, allow in DEFAULT_ACCESS.items()]
        commands.append({"command": "setDefaultACLAccess", "acls": acls})
    for name, rules in sorted(policy.roles.items()):
        wanted, held = _acls(rules), actual.roles.get(name)
        if held is None:
            commands.append({"command": "createRole", "rolename": name})
            held = set()
        for acltype, topic, _ in sorted(held - wanted):
            commands.append(
                {"command": "removeRoleACL", "rolename": name, "acltype": acltype, "topic": topic}
            )
        for acltype, topic, allow in sorted(wanted - held):
            commands.append(
                {
                    "command": "addRoleACL",
                    "rolename": name,
                    "acltype": acltype,
                    "topic": topic,
                    "allow": allow,
                }
            )
    for name, account in sorted(policy.accounts.items()):
        if name == service_account:
            log.warning("user %r has the name of the BAL's service account; not managed", name)
            continue
        client = actual.clients.get(name)
        if client is None:
            commands.append({"command": "createClient", "username": name})
            client = DynsecClient(roles=set(), disabled=False, groups=set())
        commands += _client_repairs(name, client, account.roles, account.disabled)
    service = actual.clients.get(service_account)
    if service is not None and SERVICE_ROLE not in service.roles:
        commands.append(
            {"command": "addClientRole", "username": service_account, "rolename": SERVICE_ROLE}
        )
    for name in sorted(set(actual.clients) - set(policy.accounts) - {service_account}):
        commands.append({"command": "deleteClient", "username": name})
    kept_roles = service.roles if service is not None else set()
    for name in sorted(set(actual.roles) - set(policy.roles) - kept_roles):
        commands.append({"command": "deleteRole", "rolename": name})
    for name in sorted(actual.groups):
        commands.append({"command": "deleteGroup", "groupname": name})
    return commands


def _client_repairs(
    name: str, client: DynsecClient, roles: frozenset[str], disabled: bool
) -> list[Command]:
    commands: list[Command] = []
    if disabled and not client.disabled:
        commands.append({"command": "disableClient", "username": name})
    for group in sorted(client.groups):
        commands.append({"command": "removeGroupClient", "groupname": group, "username": name})
    for role in sorted(client.roles - roles):  # disconnects this client, and only it
        commands.append({"command": "removeClientRole", "username": name, "rolename": role})
    for role in sorted(roles - client.roles):
        commands.append({"command": "addClientRole", "username": name, "rolename": role})
    if not disabled and client.disabled:
        commands.append({"command": "enableClient", "username": name})
    return commands


def describe(command: Command) -> str:
    """A command for logs: never its password."""
    shown = {k: v for k, v in command.items() if k not in ("password", "correlationData")}
    return json.dumps(shown, sort_keys=True)


class DynsecControl:
    """Request/response over the plugin's control topic, one batch at a time."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        client_id: str = "bal-dynsec",
        ca_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.username = username
        self.timeout = timeout
        self._address = BrokerAddress.parse(url)
        self._client = paho_client(
            self._address,
            username,
            password,
            client_id=client_id,
            clean_session=True,
            ca_file=ca_file,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self._answers: dict[str, list[Command]] = {}
        self._answered = threading.Condition()

    def start(self) -> None:
        self._client.connect_async(self._address.host, self._address.port)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _: Any, __: Any, reason: Any, ___: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            log.warning("dynamic security: the broker refused the service account (%s)", reason)
            with self._answered:
                self._answered.notify_all()
            return
        self._refused = None
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, *_: Any) -> None:
        self._subscribed.set()
        with self._answered:
            self._answered.notify_all()

    def _on_disconnect(self, *_: Any) -> None:
        """A batch in flight gets no answer; its request fails now rather than at the
        timeout (e.g. when the batch gave this very account a role, which disconnects it)."""
        self._subscribed.clear()
        with self._answered:
            self._answered.notify_all()

    def _on_message(self, _: mqtt.Client, __: Any, message: mqtt.MQTTMessage) -> None:
        try:
            responses = json.loads(message.payload.decode("utf-8", "replace"))["responses"]
        except (ValueError, KeyError, TypeError):
            log.warning("dynamic security: unreadable response ignored")
            return
        if not responses:
            return
        correlation = responses[0].get("correlationData")
        with self._answered:
            if correlation is not None:
                self._answers[correlation] = responses
                self._answered.notify_all()

    def request(self, commands: Sequence[Command]) -> list[Command]:
        """Send `commands` in batches; the plugin's response to each, in order."""
        responses: list[Command] = []
        with self._lock:
            for start in range(0, len(commands), BATCH):
                responses += self._batch(commands[start : start + BATCH])
        return responses

    def _batch(self, commands: Sequence[Command]) -> list[Command]:
        with self._answered:
            self._answered.wait_for(
                lambda: self._subscribed.is_set() or self._refused is not None, self.timeout
            )
        if self._refused is not None:
            raise DynsecRefused(f"connection refused to {self.username!r}: {self._refused}")
        if not self._subscribed.is_set():
            raise DynsecError("the broker's dynamic security control topic is not reachable")
        correlation = uuid.uuid4().hex
        batch = [dict(c, correlationData=correlation) for c in commands]
        # QoS 0: a batch must never be replayed after a reconnect; a lost one is retried
        # by the caller, planned again from the state the broker then holds.
        self._client.publish(CONTROL_TOPIC, json.dumps({"commands": batch}), qos=0)
        with self._answered:
            answered = self._answered.wait_for(
                lambda: correlation in self._answers or not self._subscribed.is_set(),
                self.timeout,
            )
            if correlation not in self._answers:
                raise DynsecError(
                    "the connection to the broker dropped before the answer"
                    if answered
                    else "no answer from the dynamic security plugin "
                    "(is it loaded, and does the service account hold its admin role?)"
                )
            responses = self._answers.pop(correlation)
        if len(responses) != len(batch):
            raise DynsecError(f"{len(batch)} commands sent, {len(responses)} answers")
        return responses


@dataclass(frozen=True)
class ApplyReport:
    commands: int
    errors: list[str]
    passwords_set: list[str]


class DynsecBroker:
    """Keeps one Mosquitto's Dynamic Security equal to a BrokerPolicy."""

    def __init__(self, control: DynsecControl) -> None:
        self.control = control

    def read_state(self) -> DynsecState:
        return DynsecState.from_responses(self.control.request(READ_STATE))

    def apply(self, policy: BrokerPolicy, passwords: Mapping[str, str]) -> ApplyReport:
        """Repair every difference, then set the given passwords of managed accounts."""
        commands = plan(self.read_state(), policy, self.control.username)
        for username, password in sorted(passwords.items()):
            if username in policy.accounts and username != self.control.username:
                commands.append(
                    {"command": "setClientPassword", "username": username, "password": password}
                )
        responses = self.control.request(commands)
        errors = [
            f"{describe(command)}: {response['error']}"
            for command, response in zip(commands, responses, strict=True)
            if response.get("error")
        ]
        for error in errors:
            log.warning("dynamic security: %s", error)
        set_ok = [
            command["username"]
            for command, response in zip(commands, responses, strict=True)
            if command["command"] == "setClientPassword" and not response.get("error")
        ]
        return ApplyReport(len(commands), errors, set_ok)
