"""The broker policy computed from users, devices and grants, and the Dynamic Security
commands that make a plugin's state equal to it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from platone_bal.adapters.dynsec import (
    DEFAULT_ACCESS,
    ApplyReport,
    DynsecClient,
    DynsecError,
    DynsecState,
    describe,
    plan,
)
from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.broker_policy import (
    SERVICE_ROLE,
    Action,
    BrokerPolicy,
    TopicRule,
    broker_policy,
)
from platone_bal.domain.devices import Device, DeviceKind
from platone_bal.domain.grants import Grant, GrantStatus, Slice
from platone_bal.domain.users import Role, User
from platone_bal.services.broker_sync import BrokerSync
from platone_bal.services.users import UserService

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def user(name: str, role: Role, disabled: bool = False) -> User:
    return User(name, role, "argon2-hash", f"0x{len(name):040x}", disabled)


def grant(
    grant_id: int,
    consumer: str,
    scope: Slice,
    status: GrantStatus = GrantStatus.ACCEPTED,
    expires: datetime | None = None,
) -> Grant:
    return Grant(grant_id, consumer, scope, status, NOW, NOW, expires)


USERS = [
    user("admin", Role.ADMIN),
    user("producer1", Role.PRODUCER),
    user("consumer1", Role.CONSUMER),
    user("consumer2", Role.CONSUMER),
]


def test_each_party_gets_its_own_rules() -> None:
    meter = Device("producer1", "m1", DeviceKind.METER, NOW, secret_hash="h")
    quiet = Device("producer1", "m2", DeviceKind.METER, NOW)  # no login of its own
    grants = [
        grant(1, "consumer1", Slice("producer1")),
        grant(2, "consumer2", Slice("producer1", devices=frozenset({"pmu/1", "m1"}))),
    ]
    policy = broker_policy(USERS, [meter, quiet], grants, NOW)
    assert set(policy.accounts) == {"admin", "producer1", "consumer1", "consumer2", "producer1/m1"}
    assert policy.accounts["producer1"].roles == {"bal:producer:producer1"}
    assert policy.roles["bal:producer:producer1"] == {
        TopicRule(Action.PUBLISH, "platone/producer1/#"),
        TopicRule(Action.SUBSCRIBE, "platone/producer1/#"),
        TopicRule(Action.RECEIVE, "platone/producer1/#"),
        TopicRule(Action.SUBSCRIBE, "certified/producer1/#"),
        TopicRule(Action.RECEIVE, "certified/producer1/#"),
        TopicRule(Action.SUBSCRIBE, "setpoints/producer1/#"),
        TopicRule(Action.RECEIVE, "setpoints/producer1/#"),
    }
    assert policy.roles["bal:device:producer1/m1"] == {
        TopicRule(Action.PUBLISH, "platone/producer1/m1/#"),
        TopicRule(Action.SUBSCRIBE, "setpoints/producer1/m1"),
        TopicRule(Action.RECEIVE, "setpoints/producer1/m1"),
    }
    assert policy.accounts["consumer2"].roles == {"bal:grant:2"}
    # what a grant covers is decided per reading by egress; the broker keeps the
    # consumer to the grant's own delivery topics
    assert policy.roles["bal:grant:2"] == {
        TopicRule(Action.SUBSCRIBE, "granted/2/#"),
        TopicRule(Action.RECEIVE, "granted/2/#"),
    }
    assert policy.roles[SERVICE_ROLE] == {
        TopicRule(Action.PUBLISH, "certified/#"),
        TopicRule(Action.PUBLISH, "granted/#"),
        TopicRule(Action.PUBLISH, "setpoints/#"),
        TopicRule(Action.SUBSCRIBE, "platone/#"),
        # nodes splitting the ingest subscribe $share/GROUP/platone/#
        TopicRule(Action.SUBSCRIBE, "$share/+/platone/#"),
        TopicRule(Action.RECEIVE, "platone/#"),
    }


def test_only_grants_active_now_give_a_role() -> None:
    soon = NOW + timedelta(hours=1)
    grants = [
        grant(1, "consumer1", Slice("producer1"), expires=NOW),  # expired at NOW
        grant(2, "consumer1", Slice("producer1"), GrantStatus.REVOKED),
        grant(3, "consumer1", Slice("producer1"), expires=soon),
        grant(5, "ghost", Slice("producer1")),  # no such user
    ]
    policy = broker_policy(USERS, [], grants, NOW)
    assert policy.accounts["consumer1"].roles == {"bal:grant:3"}
    assert [name for name in policy.roles if name.startswith("bal:grant:")] == ["bal:grant:3"]
    later = broker_policy(USERS, [], grants, soon)
    assert later.accounts["consumer1"].roles == frozenset()


def test_a_window_of_measurement_time_is_the_deliveries_not_the_role() -> None:
    """A grant for 2020-2030 measurements holds its role whenever it is active: which
    readings reach it is egress's decision by measurement time, as over REST (judging
    the window by the clock let readings measured in 2015 through)."""
    window = Slice("producer1", since=datetime(2020, 1, 1, tzinfo=UTC), until=NOW)
    policy = broker_policy(USERS, [], [grant(4, "consumer1", window)], NOW + timedelta(days=9))
    assert policy.accounts["consumer1"].roles == {"bal:grant:4"}


def test_disabled_users_and_their_devices_are_disabled_accounts() -> None:
    users = [user("producer1", Role.PRODUCER, disabled=True)]
    meter = Device("producer1", "m1", DeviceKind.METER, NOW, secret_hash="h")
    off = Device("producer1", "m2", DeviceKind.METER, NOW, secret_hash="h", disabled=True)
    policy = broker_policy(users, [meter, off], [], NOW)
    assert policy.accounts["producer1"].disabled
    assert policy.accounts["producer1/m1"].disabled
    assert policy.accounts["producer1/m2"].disabled


def test_a_plan_from_empty_builds_everything_and_then_nothing_is_left() -> None:
    policy = broker_policy(USERS, [], [grant(1, "consumer1", Slice("producer1"))], NOW)
    empty = DynsecState(
        clients={"bal-service": DynsecClient({"admin"}, False, set())},
        roles={"admin": {("publishClientSend", "$CONTROL/dynamic-security/#", True)}},
    )
    commands = plan(empty, policy, "bal-service")
    names = [c["command"] for c in commands]
    assert names[0] == "setDefaultACLAccess"
    assert names.count("createClient") == 4 and names.count("createRole") == 4
    assert {"command": "addClientRole", "username": "bal-service", "rolename": SERVICE_ROLE} in (
        commands
    )
    assert not [c for c in commands if c["command"].startswith("delete")]  # admin role kept

    # The state those commands make plans nothing more.
    built = DynsecState(
        clients={
            name: DynsecClient(set(account.roles), account.disabled, set())
            for name, account in policy.accounts.items()
        }
        | {"bal-service": DynsecClient({"admin", SERVICE_ROLE}, False, set())},
        roles={
            name: {(kind, topic, True) for kind, topic in _acls(rules)}
            for name, rules in policy.roles.items()
        }
        | {"admin": empty.roles["admin"]},
        default_access=dict(DEFAULT_ACCESS),
    )
    assert plan(built, policy, "bal-service") == []


def _acls(rules: frozenset[TopicRule]) -> set[tuple[str, str]]:
    kinds = {
        Action.PUBLISH: "publishClientSend",
        Action.SUBSCRIBE: "subscribePattern",
        Action.RECEIVE: "publishClientReceive",
    }
    return {(kinds[rule.action], rule.topic_filter) for rule in rules}


def test_drift_is_repaired_and_a_revoke_removes_the_role_before_deleting_it() -> None:
    policy = broker_policy(USERS, [], [], NOW)  # grant 7 was revoked
    drifted = DynsecState(
        clients={
            "bal-service": DynsecClient({"admin", SERVICE_ROLE}, False, set()),
            "consumer1": DynsecClient({"bal:grant:7"}, False, set()),
            "producer1": DynsecClient({"bal:producer:producer1"}, True, {"friends"}),
            "intruder": DynsecClient({"open"}, False, set()),
        },
        roles={
            "admin": set(),
            SERVICE_ROLE: set(),
            "bal:grant:7": {("publishClientReceive", "certified/producer1/#", True)},
            "bal:producer:producer1": {("publishClientReceive", "certified/#", True)},
            "open": {("publishClientSend", "#", True)},
        },
        groups={"friends"},
        default_access=dict(DEFAULT_ACCESS),
    )
    commands = [describe(c) for c in plan(drifted, policy, "bal-service")]
    remove_role = describe(
        {"command": "removeClientRole", "username": "consumer1", "rolename": "bal:grant:7"}
    )
    delete_role = describe({"command": "deleteRole", "rolename": "bal:grant:7"})
    assert commands.index(remove_role) < commands.index(delete_role)
    for expected in (
        {"command": "deleteClient", "username": "intruder"},
        {"command": "deleteRole", "rolename": "open"},
        {"command": "enableClient", "username": "producer1"},
        {"command": "removeGroupClient", "groupname": "friends", "username": "producer1"},
        {"command": "deleteGroup", "groupname": "friends"},
        {
            "command": "removeRoleACL",
            "rolename": "bal:producer:producer1",
            "acltype": "publishClientReceive",
            "topic": "certified/#",
        },
    ):
        assert describe(expected) in commands
    assert describe({"command": "deleteClient", "username": "bal-service"}) not in commands
    assert describe({"command": "deleteRole", "rolename": "admin"}) not in commands


def test_passwords_never_reach_a_log_line() -> None:
    line = describe({"command": "setClientPassword", "username": "u", "password": "s3cret-pw"})
    assert "s3cret-pw" not in line and '"username": "u"' in line


class RecordingBroker:
    """The PolicyBroker port held in memory: what was applied, or down."""

    def __init__(self) -> None:
        self.applied: list[tuple[BrokerPolicy, dict[str, str]]] = []
        self.down = False

    def apply(self, policy: BrokerPolicy, passwords: Mapping[str, str]) -> ApplyReport:
        if self.down:
            raise DynsecError("no answer")
        self.applied.append((policy, dict(passwords)))
        return ApplyReport(0, [], list(passwords))


def test_the_sync_applies_changes_and_keeps_passwords_until_taken(
    store: SqliteStore, users: UserService
) -> None:
    broker = RecordingBroker()
    sync = BrokerSync(store, broker, lambda: NOW, resync=3600)
    users.on_password = lambda name, password: sync.password_set(name, password, wait=0)
    users.create("producer1", "secret-pass-1", Role.PRODUCER)
    assert sync.step() and broker.applied[-1][1] == {"producer1": "secret-pass-1"}
    assert not sync.step()  # nothing changed, no resync due
    users.create("consumer1", "secret-pass-2", Role.CONSUMER)
    broker.down = True
    with pytest.raises(DynsecError):
        sync.step()
    broker.down = False
    assert sync.step()  # the password waited for the broker
    assert set(broker.applied[-1][0].accounts) == {"producer1", "consumer1"}
    assert broker.applied[-1][1] == {"consumer1": "secret-pass-2"}
    sync.resync = 0
    assert sync.step() and broker.applied[-1][1] == {}  # drift repair when due


def test_a_password_waits_for_the_running_sync(store: SqliteStore, users: UserService) -> None:
    broker = RecordingBroker()
    sync = BrokerSync(store, broker, lambda: NOW, interval=30)  # only a wake-up runs it
    sync.start()
    try:
        users.create("producer1", "secret-pass-1", Role.PRODUCER)
        assert sync.password_set("producer1", "new-pass-123", wait=5)
        assert broker.applied[-1][1] == {"producer1": "new-pass-123"}
    finally:
        sync.stop()
