"""DeviceStore: a producer's devices, their logins, keys and registry transactions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from platone_bal.domain.devices import DeviceKind
from platone_bal.domain.users import User
from platone_bal.ports import Store, UserExists
from tests.contract.builders import make_device, tx_of

KEY = "0x" + "04" + "ab" * 64


def test_a_device_is_stored_as_given(store: Store, alice: User) -> None:
    device = make_device(
        "alice",
        "ln-1",
        DeviceKind.LIGHT_NODE,
        public_key=KEY,
        secret_hash="$argon2id$device-secret",
        created=datetime(2026, 3, 1, 9, 30, 15, 654321, tzinfo=UTC),
    )
    store.add_device(device)
    stored = store.get_device("alice", "ln-1")
    assert stored == device
    assert stored is not None and stored.created == device.created  # to the microsecond
    assert stored.login == "alice/ln-1"


def test_a_plain_device_has_no_key_login_or_transaction(store: Store, alice: User) -> None:
    store.add_device(make_device("alice", "m1"))
    stored = store.get_device("alice", "m1")
    assert stored is not None
    assert (stored.public_key, stored.secret_hash, stored.chain_tx) == (None, None, None)
    assert stored.kind is DeviceKind.METER and not stored.disabled and stored.login is None


def test_unknown_devices_are_none(store: Store, alice: User) -> None:
    store.add_device(make_device("alice", "m1"))
    assert store.get_device("alice", "m2") is None
    assert store.get_device("bob", "m1") is None
    assert store.list_devices("bob") == []


def test_a_producer_cannot_have_one_device_id_twice(store: Store, alice: User, bob: User) -> None:
    first = make_device("alice", "m1")
    store.add_device(first)
    with pytest.raises(UserExists):
        store.add_device(make_device("alice", "m1", DeviceKind.PMU, public_key=KEY))
    assert store.get_device("alice", "m1") == first
    store.add_device(make_device("bob", "m1"))  # another producer may use the same id
    assert store.get_device("bob", "m1") == make_device("bob", "m1")
    store.add_device(make_device("alice", "m2"))  # and the store still takes writes
    assert len(store.list_devices("alice")) == 2


def test_devices_are_listed_by_producer_then_id(store: Store, alice: User, bob: User) -> None:
    for producer, device_id in (("bob", "z"), ("alice", "m2"), ("bob", "a"), ("alice", "m1")):
        store.add_device(make_device(producer, device_id))
    everyone = [(d.producer, d.device_id) for d in store.list_devices()]
    assert everyone == [("alice", "m1"), ("alice", "m2"), ("bob", "a"), ("bob", "z")]
    assert [d.device_id for d in store.list_devices("bob")] == ["a", "z"]
    assert all(d.producer == "alice" for d in store.list_devices("alice"))


def test_disabling_a_device(store: Store, alice: User, bob: User) -> None:
    store.add_device(make_device("alice", "m1"))
    store.add_device(make_device("bob", "m1"))
    assert store.disable_device("alice", "m1") is True
    assert store.disable_device("alice", "nope") is False
    assert store.disable_device("carol", "m1") is False
    assert store.get_device("alice", "m1") == replace(make_device("alice", "m1"), disabled=True)
    bobs = store.get_device("bob", "m1")
    assert bobs is not None and not bobs.disabled


def test_the_registry_transaction_of_a_device(store: Store, alice: User) -> None:
    store.add_device(make_device("alice", "ln-1", DeviceKind.LIGHT_NODE, public_key=KEY))
    store.add_device(make_device("alice", "ln-2", DeviceKind.LIGHT_NODE, public_key=KEY))
    store.set_device_chain_tx("alice", "ln-1", tx_of("register", 1))
    store.set_device_chain_tx("alice", "ln-1", tx_of("revoke", 1))  # the latest change
    one, two = store.get_device("alice", "ln-1"), store.get_device("alice", "ln-2")
    assert one is not None and one.chain_tx == tx_of("revoke", 1)
    assert two is not None and two.chain_tx is None
    store.set_device_chain_tx("alice", "nope", tx_of("x", 1))  # no such device: no effect
    assert store.get_device("alice", "nope") is None
    rotated_key = "0x" + "ab" * 20
    store.set_device_chain_tx("alice", "ln-2", tx_of("register", 2), public_key=rotated_key)
    two = store.get_device("alice", "ln-2")
    assert two is not None and (two.public_key, two.chain_tx) == (rotated_key, tx_of("register", 2))
    store.set_device_chain_tx("alice", "ln-2", tx_of("revoke", 2))  # the key stays
    two = store.get_device("alice", "ln-2")
    assert two is not None and two.public_key == rotated_key
