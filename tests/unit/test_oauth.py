"""OAuth2: scopes on every route, the client-credentials grant, and fail-closed tokens."""

from __future__ import annotations

import base64
import time

import jwt
from fastapi.testclient import TestClient

from platone_bal.adapters.sqlite import SqliteStore
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.unit.test_api import KEY, add_user, login, publish


def token(client: TestClient, **form: str) -> dict[str, str]:
    answer = client.post("/oauth/token", data=form)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def register(
    client: TestClient, admin: dict[str, str], username: str, scopes: list[str]
) -> tuple[str, str]:
    answer = client.post(
        "/v1/clients",
        json={"name": f"{username}'s server", "username": username, "scopes": scopes},
        headers=admin,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["scopes"] == sorted(scopes) and not body["disabled"]
    return body["client_id"], body["client_secret"]


def test_password_tokens_carry_the_roles_scopes_or_fewer(
    client: TestClient, admin: dict[str, str]
) -> None:
    add_user(client, admin, "producer1", "producer")
    form = {"grant_type": "password", "username": "producer1", "password": "pass-producer1"}
    full = client.post("/oauth/token", data=form).json()
    assert full["scope"] == "data:ingest data:read grants:write verify"
    assert full["token_type"] == "bearer" and full["expires_in"] == 600
    narrow = client.post("/oauth/token", data={**form, "scope": "verify"}).json()
    assert narrow["scope"] == "verify"
    beyond = client.post("/oauth/token", data={**form, "scope": "data:read admin"})
    assert (beyond.status_code, beyond.json()["error"]) == (400, "invalid_scope")
    unknown = client.post("/oauth/token", data={**form, "scope": "everything"})
    assert unknown.json()["error"] == "invalid_scope"


def test_a_valid_token_without_the_scope_is_403_naming_it(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    publish(store, "producer1", SAMPLE_PMU)
    verify_only = token(
        client,
        grant_type="password",
        username="producer1",
        password="pass-producer1",
        scope="verify",
    )
    answer = client.get("/v1/readings", headers=verify_only)
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    assert "data:read" in answer.json()["detail"]
    assert client.get("/v1/readings/1/proof", headers=verify_only).status_code == 403
    assert client.get("/v1/anchors", headers=verify_only).status_code == 200
    read_only = token(
        client, grant_type="password", username="admin", password="admin-pass-1", scope="data:read"
    )
    assert client.get("/v1/users", headers=read_only).status_code == 403
    assert client.get("/v1/readings", headers=read_only).status_code == 200


def test_client_credentials_act_for_their_user_with_their_scopes(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    add_user(client, admin, "producer2", "producer")
    publish(store, "producer1", SAMPLE_XML)
    publish(store, "producer2", SAMPLE_PMU)
    client_id, secret = register(client, admin, "producer1", ["data:read"])
    # client credentials in the form (RFC 6749 §2.3.1) ...
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert answer.json()["scope"] == "data:read"
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    rows = client.get("/v1/readings", headers=headers).json()["items"]
    assert {row["producer"] for row in rows} == {"producer1"}
    other = client.get("/v1/readings", params={"producer": "producer2"}, headers=headers)
    assert other.status_code == 403
    assert client.get("/v1/anchors", headers=headers).status_code == 403  # no verify scope
    # ... or with HTTP Basic
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    via_basic = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert via_basic.status_code == 200
    # the client cannot ask for more than it was given
    wider = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "data:read data:ingest",
        },
    )
    assert wider.json()["error"] == "invalid_scope"
    # disabling the client stops its live tokens at once
    assert client.delete(f"/v1/clients/{client_id}", headers=admin).status_code == 204
    assert client.get("/v1/readings", headers=headers).status_code == 401
    again = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert (again.status_code, again.json()["error"]) == (401, "invalid_client")
    listed = client.get("/v1/clients", headers=admin).json()
    assert [(c["client_id"], c["disabled"]) for c in listed] == [(client_id, True)]
    assert "client_secret" not in listed[0]


def test_client_credentials_errors(client: TestClient, admin: dict[str, str]) -> None:
    add_user(client, admin, "consumer1", "consumer")
    client_id, _ = register(client, admin, "consumer1", ["verify"])
    wrong = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"},
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert wrong.headers["www-authenticate"].startswith("Basic")
    missing = client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert missing.json()["error"] == "invalid_client"
    garbage = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic %%%"},
    )
    assert garbage.status_code == 401
    # registration rules: a consumer's client cannot ingest; the user must exist
    beyond = client.post(
        "/v1/clients",
        json={"name": "x", "username": "consumer1", "scopes": ["data:ingest"]},
        headers=admin,
    )
    assert beyond.status_code == 422 and "data:ingest" in beyond.json()["detail"]
    ghost = client.post(
        "/v1/clients", json={"name": "x", "username": "ghost", "scopes": ["verify"]}, headers=admin
    )
    assert ghost.status_code == 422
    consumer = login(client, "consumer1", "pass-consumer1")
    assert client.get("/v1/clients", headers=consumer).status_code == 403


def test_a_disabled_owner_stops_its_clients(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    client_id, secret = register(client, admin, "producer1", ["data:read"])
    headers = token(
        client, grant_type="client_credentials", client_id=client_id, client_secret=secret
    )
    store._connection().execute("UPDATE users SET disabled = 1 WHERE username = 'producer1'")
    assert client.get("/v1/readings", headers=headers).status_code == 401
    refused = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert refused.status_code == 401


def test_tokens_are_checked_against_the_store_not_only_their_claims(
    client: TestClient, admin: dict[str, str]
) -> None:
    add_user(client, admin, "producer1", "producer")
    now = int(time.time())
    # a correctly signed token claiming admin scope for a producer gets only the role's scopes
    claims = {"iss": "platone-bal", "sub": "producer1", "iat": now, "exp": now + 60, "ver": 0}
    inflated = jwt.encode({**claims, "scope": "admin data:read"}, KEY, "HS256")
    headers = {"Authorization": f"Bearer {inflated}"}
    assert client.get("/v1/users", headers=headers).status_code == 403
    # a token naming a client that does not exist is refused
    ghost = jwt.encode({**claims, "scope": "data:read", "client_id": "bal-ghost"}, KEY, "HS256")
    answer = client.get("/v1/readings", headers={"Authorization": f"Bearer {ghost}"})
    assert answer.status_code == 401
    no_scope = jwt.encode(claims, KEY, "HS256")
    assert (
        client.get("/v1/readings", headers={"Authorization": f"Bearer {no_scope}"}).status_code
        == 401
    )
    basic = client.get("/v1/readings", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401


def test_openapi_declares_both_oauth2_flows_and_route_scopes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    flows = spec["components"]["securitySchemes"]["OAuth2"]["flows"]
    assert set(flows) == {"password", "clientCredentials"}
    assert set(flows["clientCredentials"]["scopes"]) == {
        "data:read",
        "data:ingest",
        "grants:write",
        "verify",
        "admin",
    }
    assert spec["paths"]["/v1/readings"]["get"]["security"] == [{"OAuth2": ["data:read"]}]
    decide = [{"OAuth2": ["grants:write"]}]
    assert spec["paths"]["/v1/grants"]["post"]["security"] == decide
    assert spec["paths"]["/v1/grants/{grant_id}/accept"]["post"]["security"] == decide
    assert spec["paths"]["/v1/grants"]["get"]["security"] == [{"OAuth2": ["data:read"]}]
    assert spec["paths"]["/v1/users"]["post"]["security"] == [{"OAuth2": ["admin"]}]


def test_another_producers_data_is_out_of_reach_on_every_route(
    client: TestClient, admin: dict[str, str], store: SqliteStore
) -> None:
    add_user(client, admin, "producer1", "producer")
    other = add_user(client, admin, "producer2", "producer")
    publish(store, "producer1", SAMPLE_XML)
    by_producer = {"producer": "producer1"}
    assert client.get("/v1/readings", params=by_producer, headers=other).status_code == 403
    assert client.get("/v1/readings", headers=other).json()["items"] == []
    assert client.get("/v1/readings/1/proof", headers=other).status_code == 404
    certification = {"device": "11111111", "producer": "producer1"}
    assert client.get("/v1/certifications", params=certification, headers=other).status_code == 403
    assert client.post("/scd/getData", json=by_producer, headers=other).status_code == 403
    assert client.post("/bap/getTransactions", json=by_producer, headers=other).status_code == 403
    reading = {"log": "bal-main", "index": 0, "value": "11.04"}
    assert client.post("/bap/getOwner", json=reading, headers=other).status_code == 404
    verdict = client.post("/v1/verify", json={"readings": [reading]}, headers=other).json()
    assert verdict["items"][0]["reason"].startswith("no certified reading")
    rejections = client.get("/v1/rejections", headers=other).json()["items"]
    assert rejections == []


def client_token(
    client: TestClient, admin: dict[str, str], user: str, scopes: list[str]
) -> dict[str, str]:
    """A token of a platform client registered for `user` with `scopes`."""
    client_id, secret = register(client, admin, user, scopes)
    return token(client, grant_type="client_credentials", client_id=client_id, client_secret=secret)


def test_deciding_grants_needs_grants_write_which_data_read_does_not_imply(
    client: TestClient, admin: dict[str, str]
) -> None:
    producer = add_user(client, admin, "producer1", "producer")
    consumer = add_user(client, admin, "consumer1", "consumer")
    reader_of_producer = client_token(client, admin, "producer1", ["data:read"])
    reader_of_consumer = client_token(client, admin, "consumer1", ["data:read"])
    asked = client.post("/v1/grants", json={"producer": "producer1"}, headers=reader_of_consumer)
    assert asked.status_code == 403
    assert 'scope="grants:write"' in asked.headers["www-authenticate"]
    grant = client.post("/v1/grants", json={"producer": "producer1"}, headers=consumer).json()
    for action in ("accept", "refuse", "revoke"):
        answer = client.post(f"/v1/grants/{grant['id']}/{action}", headers=reader_of_producer)
        assert answer.status_code == 403, action
    revoked = client.post(f"/v1/grants/{grant['id']}/revoke", headers=reader_of_consumer)
    assert revoked.status_code == 403
    # reading grants stays data:read
    assert client.get(f"/v1/grants/{grant['id']}", headers=reader_of_consumer).status_code == 200
    assert client.get("/v1/grants", headers=reader_of_producer).json()[0]["status"] == "requested"
    # a platform registered to decide may; people decide with their role's scopes
    decider = client_token(client, admin, "producer1", ["data:read", "grants:write"])
    accepted = client.post(f"/v1/grants/{grant['id']}/accept", headers=decider)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    revoked = client.post(f"/v1/grants/{grant['id']}/revoke", headers=producer)
    assert revoked.status_code == 200
    # a person's token narrowed to data:read cannot decide either
    narrowed = token(
        client,
        grant_type="password",
        username="consumer1",
        password="pass-consumer1",
        scope="data:read",
    )
    refused = client.post("/v1/grants", json={"producer": "producer1"}, headers=narrowed)
    assert refused.status_code == 403
