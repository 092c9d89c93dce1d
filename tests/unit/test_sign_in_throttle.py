"""Failed sign-ins are throttled per account and per source address, with lockouts
doubling from 1 s to 15 min, on the token endpoint (both grants) and the dashboard form.
The clock is injected: nothing here waits."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from platone_bal.services.users import LockoutPolicy, SignInThrottle, SignInThrottled, UserService
from tests.unit.test_api import add_user
from tests.unit.test_dashboard_pages import csrf_of
from tests.unit.test_oauth import register


class Clock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(users: UserService) -> Clock:
    """The node's sign-in throttle on a clock the test moves."""
    moved = Clock()
    users.sign_ins = SignInThrottle(clock=moved)
    return moved


def password(client: TestClient, username: str, secret: str) -> tuple[int, dict[str, str]]:
    answer = client.post(
        "/oauth/token", data={"grant_type": "password", "username": username, "password": secret}
    )
    return answer.status_code, {**answer.json(), **dict(answer.headers)}


def fail(throttle: SignInThrottle, account: str = "user:a", source: str = "ip") -> None:
    assert throttle.check(account, source, lambda: None) is None


def locked_for(throttle: SignInThrottle, account: str = "user:a", source: str = "ip") -> float:
    with pytest.raises(SignInThrottled) as refused:
        throttle.check(account, source, lambda: "never checked")
    return refused.value.retry_after


def test_lockouts_start_after_five_failures_and_double_up_to_fifteen_minutes() -> None:
    clock = Clock()
    # the source's own count is tested below: here it never locks
    throttle = SignInThrottle(sources=LockoutPolicy(free_failures=1000), clock=clock)
    for _ in range(4):
        fail(throttle)
    assert throttle.check("user:a", "ip", lambda: "ok") == "ok"  # a success resets
    for _ in range(5):
        fail(throttle)
    lockouts = []
    for _ in range(12):
        wait = locked_for(throttle)
        lockouts.append(wait)
        clock.now += wait
        fail(throttle)
    assert lockouts == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    assert throttle.check("user:other", "ip", lambda: "ok") == "ok"  # only that account
    clock.now += 900
    assert throttle.check("user:a", "ip", lambda: "ok") == "ok"
    for _ in range(4):  # the account starts over
        fail(throttle)
    assert throttle.check("user:a", "ip", lambda: "ok") == "ok"


def test_failures_from_one_source_lock_it_for_every_account() -> None:
    clock = Clock()
    throttle = SignInThrottle(clock=clock)
    for number in range(20):
        fail(throttle, f"user:name{number}", "sprayer")
    assert locked_for(throttle, "user:fresh", "sprayer") == 1
    assert throttle.check("user:fresh", "someone-else", lambda: "ok") == "ok"
    clock.now += 3600  # an hour without failures forgets them
    assert throttle.check("user:fresh", "sprayer", lambda: "ok") == "ok"


def test_parallel_attempts_cannot_outrun_the_count_and_errors_count_for_nothing() -> None:
    throttle = SignInThrottle(LockoutPolicy(free_failures=2), clock=Clock())
    fail(throttle)

    def inner() -> None:
        # checked while the outer attempt is still being checked: one failure is left,
        # and it is taken by the outer attempt
        assert locked_for(throttle) == 1
        return None

    assert throttle.check("user:a", "ip", inner) is None
    assert locked_for(throttle) == 1  # the outer attempt failed: 2 failures, locked

    def broken() -> str:
        raise RuntimeError("store unavailable")

    other = SignInThrottle(clock=Clock())
    for _ in range(10):
        with pytest.raises(RuntimeError):
            other.check("user:b", "ip", broken)
    assert other.check("user:b", "ip", lambda: "ok") == "ok"


def test_the_token_endpoint_answers_429_alike_for_real_and_unknown_accounts(
    client: TestClient, admin: dict[str, str], clock: Clock
) -> None:
    add_user(client, admin, "producer1", "producer")
    for name in ("producer1", "ghost"):
        for _ in range(5):
            assert password(client, name, "wrong-guess")[0] == 400
        status, answer = password(client, name, "pass-producer1")  # not even checked
        assert status == 429, name
        assert answer["error"] == "slow_down" and answer["retry-after"] == "1"
        assert answer["cache-control"] == "no-store"
        assert "1 s" in answer["error_description"]
    clock.now += 1
    assert password(client, "producer1", "pass-producer1")[0] == 200
    for _ in range(4):  # the success reset the account: 4 failures lock nothing
        assert password(client, "producer1", "wrong-guess")[0] == 400
    assert password(client, "producer1", "pass-producer1")[0] == 200


def test_client_credentials_are_throttled_per_client(
    client: TestClient, admin: dict[str, str], clock: Clock
) -> None:
    add_user(client, admin, "producer1", "producer")
    client_id, secret = register(client, admin, "producer1", ["data:read"])

    def attempt(given: str) -> int:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": given}
        return client.post("/oauth/token", data=form).status_code

    assert [attempt("wrong") for _ in range(5)] == [401] * 5
    refused = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    clock.now += 1
    assert attempt(secret) == 200


def test_the_dashboard_form_shares_the_accounts_count_and_answers_429(
    client: TestClient, admin: dict[str, str], clock: Clock
) -> None:
    add_user(client, admin, "consumer1", "consumer")
    for _ in range(3):
        assert password(client, "consumer1", "wrong-guess")[0] == 400

    def form(secret: str) -> tuple[int, str, str | None]:
        csrf = csrf_of(client.get("/login").text)
        answer = client.post(
            "/login",
            data={"csrf": csrf, "username": "consumer1", "password": secret},
            follow_redirects=False,
        )
        return answer.status_code, answer.text, answer.headers.get("retry-after")

    assert form("wrong-guess")[0] == 200  # the form again, with the error
    assert form("wrong-guess")[0] == 200  # the fifth failure
    status, page, retry = form("pass-consumer1")
    assert (status, retry) == (429, "1")
    assert "Too many failed sign-ins. Try again in 1 second." in page
    assert password(client, "consumer1", "pass-consumer1")[0] == 429  # the same count
    clock.now += 1
    assert form("pass-consumer1")[0] == 303
