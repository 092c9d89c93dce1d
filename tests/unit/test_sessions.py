"""Ending sessions: sign-out, password change or reset and disabling revoke every bearer
token, dashboard cookie and page token issued before (token versions)."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import jwt
from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from tests.unit.test_api import KEY, add_user, login
from tests.unit.test_dashboard_pages import sign_in
from tests.unit.test_oauth import register, token


def page_token(client: TestClient, path: str) -> dict[str, str]:
    """The bearer token a dashboard page embeds for its charts."""
    found = re.search(r'name="bal-api-token" content="([^"]+)"', client.get(path).text)
    assert found, "the page carries no API token"
    return {"Authorization": f"Bearer {found.group(1)}"}


def is_signed_in(client: TestClient, cookie: str, home: str) -> bool:
    """Whether the dashboard takes this session cookie (a copy, e.g. a stolen one)."""
    client.cookies.set("bal_session", cookie)
    answer = client.get(home, follow_redirects=False)
    return answer.status_code == 200


def test_signing_out_ends_the_cookie_its_copies_the_page_token_and_api_tokens(
    client: TestClient, admin: dict[str, str]
) -> None:
    api = add_user(client, admin, "consumer1", "consumer")
    csrf = sign_in(client, "consumer1", "pass-consumer1")
    cookie = client.cookies["bal_session"]
    embedded = page_token(client, "/consumer")
    assert client.get("/v1/me", headers=embedded).status_code == 200
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert not is_signed_in(client, cookie, "/consumer")  # the saved cookie is dead
    assert client.get("/v1/me", headers=embedded).status_code == 401  # the page's token
    revoked = client.get("/v1/me", headers=api)  # a token from the token endpoint
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]
    # signing in again works, with a new cookie and new tokens
    client.cookies.clear()
    sign_in(client, "consumer1", "pass-consumer1")
    assert client.get("/v1/me", headers=page_token(client, "/consumer")).status_code == 200


def test_a_password_change_or_reset_revokes_tokens_and_sessions(
    client: TestClient, admin: dict[str, str]
) -> None:
    old = add_user(client, admin, "producer1", "producer")
    sign_in(client, "producer1", "pass-producer1")
    cookie = client.cookies["bal_session"]
    changed = client.post(
        "/v1/me/password", json={"current": "pass-producer1", "new": "new-pass-1"}, headers=old
    )
    assert changed.status_code == 204
    assert client.get("/v1/me", headers=old).status_code == 401
    assert not is_signed_in(client, cookie, "/producer")

    new = login(client, "producer1", "new-pass-1")
    client.cookies.clear()
    sign_in(client, "producer1", "new-pass-1")
    cookie = client.cookies["bal_session"]
    assert is_signed_in(client, cookie, "/producer")
    reset = client.post(
        "/v1/users/producer1/password", json={"password": "reset-1-pass"}, headers=admin
    )
    assert reset.status_code == 204
    assert client.get("/v1/me", headers=new).status_code == 401
    assert not is_signed_in(client, cookie, "/producer")
    assert client.get("/v1/me", headers=admin).status_code == 200  # others are untouched


def test_disabling_revokes_for_good_enabling_does_not_revive_old_tokens(
    client: TestClient, admin: dict[str, str]
) -> None:
    person = add_user(client, admin, "producer1", "producer")
    client_id, secret = register(client, admin, "producer1", ["data:read"])
    platform = token(
        client, grant_type="client_credentials", client_id=client_id, client_secret=secret
    )
    sign_in(client, "producer1", "pass-producer1")
    cookie = client.cookies["bal_session"]
    client.post("/v1/users/producer1/disable", headers=admin).raise_for_status()
    client.post("/v1/users/producer1/enable", headers=admin).raise_for_status()
    assert client.get("/v1/me", headers=person).status_code == 401
    assert client.get("/v1/readings", headers=platform).status_code == 401
    assert not is_signed_in(client, cookie, "/producer")
    # new tokens work again: the client itself was not disabled
    again = token(
        client, grant_type="client_credentials", client_id=client_id, client_secret=secret
    )
    assert client.get("/v1/readings", headers=again).status_code == 200
    assert client.get("/v1/me", headers=login(client, "producer1", "pass-producer1")).json()


def test_signing_out_through_the_api_revokes_the_callers_tokens_only(
    client: TestClient, admin: dict[str, str]
) -> None:
    first = add_user(client, admin, "consumer1", "consumer")
    second = login(client, "consumer1", "pass-consumer1")
    client_id, secret = register(client, admin, "consumer1", ["data:read"])
    platform = token(
        client, grant_type="client_credentials", client_id=client_id, client_secret=secret
    )
    assert client.post("/v1/me/logout", headers=first).status_code == 204
    assert client.get("/v1/me", headers=first).status_code == 401
    assert client.get("/v1/me", headers=second).status_code == 401  # every session of it
    assert client.get("/v1/me", headers=platform).status_code == 200  # its platform's not
    assert client.post("/v1/me/logout", headers=platform).status_code == 204
    assert client.get("/v1/me", headers=platform).status_code == 401
    fresh = login(client, "consumer1", "pass-consumer1")
    assert client.get("/v1/me", headers=fresh).status_code == 200  # the person's not either


def test_disabling_a_client_revokes_its_tokens_and_tokens_need_a_version(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    client_id, secret = register(client, admin, "producer1", ["data:read"])
    platform = token(
        client, grant_type="client_credentials", client_id=client_id, client_secret=secret
    )
    assert client.delete(f"/v1/clients/{client_id}", headers=admin).status_code == 204
    stored = store.get_client(client_id)
    assert stored is not None and stored.disabled and stored.token_version == 1
    assert client.get("/v1/readings", headers=platform).status_code == 401
    assert client.delete("/v1/clients/bal-ghost", headers=admin).status_code == 404
    # a correctly signed token without a version (as issued before versions) is refused
    now = int(time.time())
    claims = {"iss": "platone-bal", "sub": "producer1", "iat": now, "exp": now + 60}
    unversioned = jwt.encode({**claims, "scope": "data:read"}, KEY, "HS256")
    answer = client.get("/v1/me", headers={"Authorization": f"Bearer {unversioned}"})
    assert answer.status_code == 401


OLD_SCHEMA = """
CREATE TABLE users (
    username TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
    wallet TEXT NOT NULL UNIQUE, keystore TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY, name TEXT NOT NULL,
    username TEXT NOT NULL REFERENCES users (username), scopes TEXT NOT NULL,
    secret_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO users (username, role, password_hash, wallet, keystore)
    VALUES ('producer1', 'producer', 'hash', '0x01', '{}');
INSERT INTO clients (client_id, name, username, scopes, secret_hash)
    VALUES ('bal-1', 'server', 'producer1', 'data:read', 'hash');
"""


def test_a_database_from_before_token_versions_opens_and_revokes(tmp_path: Path) -> None:
    path = tmp_path / "scd.sqlite3"
    with sqlite3.connect(path) as old:
        old.executescript(OLD_SCHEMA)
    store = SqliteStore(path)
    try:
        user, platform = store.get_user("producer1"), store.get_client("bal-1")
        assert user is not None and user.token_version == 0
        assert platform is not None and platform.token_version == 0
        assert store.revoke_user_tokens("producer1", clients=True)
        assert store.revoke_client_tokens("bal-1")
        user, platform = store.get_user("producer1"), store.get_client("bal-1")
        assert user is not None and user.token_version == 1
        assert platform is not None and platform.token_version == 2
        assert not store.revoke_user_tokens("ghost") and not store.revoke_client_tokens("x")
    finally:
        store.close()
    SqliteStore(path).close()  # opening again finds the columns and adds nothing
