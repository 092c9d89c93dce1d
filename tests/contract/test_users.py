"""UserStore and ClientStore: people and platforms, their status and token versions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from platone_bal.domain.users import Role, Scope, User
from platone_bal.ports import Store, UserExists
from tests.contract.builders import keystore_of, make_client, make_user, wallet_of


def test_a_user_is_stored_as_given(store: Store) -> None:
    user = make_user("alice", Role.PRODUCER)
    store.add_user(user, keystore_of("alice"))
    assert store.get_user("alice") == user
    assert store.get_user("alice") == User(
        "alice", Role.PRODUCER, user.password_hash, wallet_of("alice"), False, 0
    )
    assert store.user_keystore("alice") == keystore_of("alice")


def test_unknown_users_are_none(store: Store) -> None:
    assert store.get_user("nobody") is None
    assert store.user_keystore("nobody") is None
    assert store.list_users() == []


def test_a_user_added_disabled_stays_disabled(store: Store) -> None:
    store.add_user(make_user("dave", Role.CONSUMER, disabled=True), keystore_of("dave"))
    stored = store.get_user("dave")
    assert stored is not None and stored.disabled and stored.role is Role.CONSUMER


def test_users_are_listed_by_username(store: Store) -> None:
    for name, role in (("carol", Role.CONSUMER), ("admin", Role.ADMIN), ("bob", Role.PRODUCER)):
        store.add_user(make_user(name, role), keystore_of(name))
    assert [u.username for u in store.list_users()] == ["admin", "bob", "carol"]
    assert [u.role for u in store.list_users()] == [Role.ADMIN, Role.PRODUCER, Role.CONSUMER]


def test_a_taken_username_is_refused_and_the_first_user_kept(store: Store) -> None:
    first = make_user("alice")
    store.add_user(first, keystore_of("alice"))
    again = User("alice", Role.ADMIN, "other-hash", wallet_of("someone else"))
    with pytest.raises(UserExists):
        store.add_user(again, "other keystore")
    assert store.get_user("alice") == first
    assert store.user_keystore("alice") == keystore_of("alice")
    assert len(store.list_users()) == 1


def test_a_taken_wallet_is_refused(store: Store) -> None:
    store.add_user(make_user("alice"), keystore_of("alice"))
    twin = User("mallory", Role.PRODUCER, "hash", wallet_of("alice"))
    with pytest.raises(UserExists):
        store.add_user(twin, keystore_of("mallory"))
    assert store.get_user("mallory") is None
    assert [u.username for u in store.list_users()] == ["alice"]


def test_the_store_is_usable_after_a_refused_user(store: Store) -> None:
    """A refused insert must not leave the connection in a failed transaction."""
    store.add_user(make_user("alice"), keystore_of("alice"))
    with pytest.raises(UserExists):
        store.add_user(make_user("alice"), keystore_of("alice"))
    store.add_user(make_user("bob"), keystore_of("bob"))
    assert [u.username for u in store.list_users()] == ["alice", "bob"]


def test_has_role(store: Store) -> None:
    assert not store.has_role(Role.ADMIN)
    store.add_user(make_user("admin", Role.ADMIN), keystore_of("admin"))
    assert store.has_role(Role.ADMIN)
    assert not store.has_role(Role.PRODUCER)
    assert not store.has_role(Role.CONSUMER)


def test_update_user_changes_status_and_password(store: Store) -> None:
    user = make_user("alice")
    store.add_user(user, keystore_of("alice"))
    assert store.update_user("alice", disabled=True) is True
    assert store.get_user("alice") == User(
        "alice", user.role, user.password_hash, user.wallet, disabled=True
    )
    assert store.update_user("alice", password_hash="new-hash") is True
    stored = store.get_user("alice")
    assert stored is not None and stored.password_hash == "new-hash" and stored.disabled
    assert store.update_user("alice", disabled=False, password_hash="newer") is True
    stored = store.get_user("alice")
    assert stored is not None and stored.password_hash == "newer" and not stored.disabled
    assert store.update_user("alice") is True  # nothing to change, but the user exists
    assert store.get_user("alice") == stored


def test_update_of_an_unknown_user_is_false(store: Store) -> None:
    assert store.update_user("nobody", disabled=True) is False
    assert store.update_user("nobody", password_hash="h") is False
    assert store.get_user("nobody") is None


def test_updating_one_user_leaves_the_others(store: Store) -> None:
    for name in ("alice", "bob"):
        store.add_user(make_user(name), keystore_of(name))
    store.update_user("alice", disabled=True, password_hash="changed")
    assert store.get_user("bob") == make_user("bob")


def test_revoking_a_users_tokens_raises_its_version(store: Store) -> None:
    for name in ("alice", "bob"):
        store.add_user(make_user(name), keystore_of(name))
    assert store.revoke_user_tokens("alice") is True
    assert store.revoke_user_tokens("alice") is True
    alice, bob = store.get_user("alice"), store.get_user("bob")
    assert alice is not None and alice.token_version == 2
    assert bob is not None and bob.token_version == 0
    assert store.revoke_user_tokens("nobody") is False
    assert store.revoke_user_tokens("nobody", clients=True) is False


def test_revoking_with_clients_raises_the_users_clients_versions_too(store: Store) -> None:
    for name in ("alice", "bob"):
        store.add_user(make_user(name), keystore_of(name))
    store.add_client(make_client("alice-dso", "alice"))
    store.add_client(make_client("alice-erp", "alice"))
    store.add_client(make_client("bob-dso", "bob"))

    store.revoke_user_tokens("alice")  # without clients: theirs stay
    assert [c.token_version for c in store.list_clients()] == [0, 0, 0]

    assert store.revoke_user_tokens("alice", clients=True) is True
    versions = {c.client_id: c.token_version for c in store.list_clients()}
    assert versions == {"alice-dso": 1, "alice-erp": 1, "bob-dso": 0}
    alice = store.get_user("alice")
    assert alice is not None and alice.token_version == 2


# platform clients


def test_a_client_is_stored_as_given(store: Store) -> None:
    store.add_user(make_user("alice"), keystore_of("alice"))
    client = make_client("alice-dso", "alice", Scope.READ, Scope.INGEST, Scope.VERIFY)
    store.add_client(client)
    assert store.get_client("alice-dso") == client
    assert store.get_client("nobody") is None


def test_clients_are_listed_in_order_of_registration(store: Store) -> None:
    store.add_user(make_user("alice"), keystore_of("alice"))
    assert store.list_clients() == []
    made = [make_client(f"c{n}", "alice", Scope.READ) for n in range(3)]
    for client in made:
        store.add_client(client)
    assert store.list_clients() == made


def test_a_client_with_every_scope_keeps_them_all(store: Store) -> None:
    store.add_user(make_user("admin", Role.ADMIN), keystore_of("admin"))
    client = make_client("ops", "admin", *Scope)
    store.add_client(client)
    stored = store.get_client("ops")
    assert stored is not None and stored.scopes == frozenset(Scope)


def test_disabling_a_client(store: Store) -> None:
    store.add_user(make_user("alice"), keystore_of("alice"))
    store.add_client(make_client("c1", "alice"))
    store.add_client(make_client("c2", "alice"))
    assert store.disable_client("c1") is True
    assert store.disable_client("c1") is True  # still there, still disabled
    assert store.disable_client("nobody") is False
    c1, c2 = store.get_client("c1"), store.get_client("c2")
    assert c1 is not None and c1.disabled
    assert c2 is not None and not c2.disabled


def test_revoking_a_clients_tokens(store: Store) -> None:
    store.add_user(make_user("alice"), keystore_of("alice"))
    store.add_client(make_client("c1", "alice"))
    store.add_client(make_client("c2", "alice"))
    assert store.revoke_client_tokens("c1") is True
    assert store.revoke_client_tokens("c1") is True
    assert store.revoke_client_tokens("nobody") is False
    c1, c2 = store.get_client("c1"), store.get_client("c2")
    assert c1 is not None and c1.token_version == 2
    assert c2 is not None and c2.token_version == 0
    alice = store.get_user("alice")
    assert alice is not None and alice.token_version == 0


def test_users_and_clients_outlive_the_store_object(
    store: Store, open_store: Callable[[], Store]
) -> None:
    """What one store wrote, another on the same database reads (a restart, a second node)."""
    store.add_user(make_user("alice"), keystore_of("alice"))
    store.add_client(make_client("c1", "alice"))
    store.revoke_user_tokens("alice", clients=True)
    other = open_store()
    alice = other.get_user("alice")
    assert alice is not None and alice.token_version == 1
    client = other.get_client("c1")
    assert client is not None and client.token_version == 1
    assert other.user_keystore("alice") == keystore_of("alice")
