"""Admins disable, enable and reset users; users change their own password."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.unit.test_api import add_user, login


def test_disabling_stops_tokens_and_logins_at_once_and_enabling_restores(
    client: TestClient, admin: dict[str, str]
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    assert client.get("/v1/me", headers=producer).json()["username"] == "producer1"
    disabled = client.post("/v1/users/producer1/disable", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert client.get("/v1/me", headers=producer).status_code == 401
    refused = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "producer1", "password": "pass-producer1"},
    )
    assert refused.json()["error"] == "invalid_grant"
    assert client.post("/v1/users/producer1/enable", headers=admin).json()["disabled"] is False
    assert (
        client.get("/v1/me", headers=login(client, "producer1", "pass-producer1")).status_code
        == 200
    )
    assert client.post("/v1/users/ghost/disable", headers=admin).status_code == 404
    assert client.post("/v1/users/admin/disable", headers=admin).status_code == 422
    assert client.post("/v1/users/admin/disable", headers=producer).status_code in (401, 403)


def test_passwords_are_reset_by_admins_and_changed_by_their_owners(
    client: TestClient, admin: dict[str, str]
) -> None:
    consumer = add_user(client, admin, "consumer1", "consumer")
    wrong = client.post(
        "/v1/me/password", json={"current": "nope-nope", "new": "brand-new-pass"}, headers=consumer
    )
    assert wrong.status_code == 422 and "current password" in wrong.json()["detail"]
    changed = client.post(
        "/v1/me/password",
        json={"current": "pass-consumer1", "new": "brand-new-pass"},
        headers=consumer,
    )
    assert changed.status_code == 204
    consumer = login(client, "consumer1", "brand-new-pass")  # the old token was revoked
    short = client.post("/v1/users/consumer1/password", json={"password": "short"}, headers=admin)
    assert short.status_code == 422
    reset = client.post(
        "/v1/users/consumer1/password", json={"password": "reset-by-admin"}, headers=admin
    )
    assert reset.status_code == 204
    consumer = login(client, "consumer1", "reset-by-admin")
    assert (
        client.post(
            "/v1/users/consumer1/password", json={"password": "x" * 12}, headers=consumer
        ).status_code
        == 403
    )
