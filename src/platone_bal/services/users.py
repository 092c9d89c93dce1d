"""Creating and authenticating users.

A user created here can at once log in to the API and connect to MQTT with the same
username and password: the API and the embedded broker check the same argon2 hash in
the store; an external broker gets the password through `on_password`.

Sessions end by token version: signing out, changing or resetting a password and
disabling raise the user's version, and every token and dashboard session issued before
stops working at once. Failed sign-ins are throttled per account and per source address
(`SignInThrottle`), in this process's memory.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from platone_bal.adapters.passwords import hash_password, verify_password
from platone_bal.adapters.wallets import Wallets
from platone_bal.domain.users import Role, User, valid_username
from platone_bal.ports import Store, UserExists

MIN_PASSWORD_LENGTH = 8
_T = TypeVar("_T")


class InvalidUser(ValueError):
    """The username or password does not meet the rules; the message says which."""


class SignInThrottled(Exception):
    """Too many failed sign-ins for this account or from this address: the attempt was
    not checked at all (so a lockout says nothing about the password, nor whether the
    account exists). `retry_after` is in seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed sign-ins; retry in {retry_after:.0f} s")
        self.retry_after = retry_after

    @property
    def seconds(self) -> int:
        """Whole seconds for a Retry-After header (at least 1)."""
        return max(1, math.ceil(self.retry_after))


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """How failed sign-ins of one key (an account or a source address) lock it out."""

    free_failures: int = 5
    """Consecutive failures allowed before the first lockout."""
    first_lockout: float = 1.0
    """Seconds of the first lockout; each further failure doubles it..."""
    longest_lockout: float = 900.0
    """...up to this (15 minutes): then one guess per 15 minutes at most."""
    forget_after: float = 3600.0
    """Failures are forgotten after this long without another failure."""

    def lockout(self, failures: int) -> float:
        """Seconds a key stays locked after its latest of `failures` failures."""
        if failures < self.free_failures:
            return 0.0
        doublings = min(failures - self.free_failures, 32)  # 2**32 s is far past the cap
        return min(self.longest_lockout, self.first_lockout * 2.0**doublings)

    def concurrent(self, failures: int) -> int:
        """Attempts a key may have checked at the same time: no more than the failures
        left before the next lockout, so parallel requests cannot outrun the count."""
        return max(1, self.free_failures - failures)


ACCOUNT_LOCKOUT = LockoutPolicy()
SOURCE_LOCKOUT = LockoutPolicy(free_failures=20)
"""A source address may be many people behind one NAT: more free failures, and a
success does not reset it (else one valid account would whitewash password spraying)."""


@dataclass(slots=True)
class _Failures:
    count: int = 0
    last: float = 0.0
    checking: int = 0


class _Counter:
    """Failures per key under one policy (callers hold the throttle's lock)."""

    MAX_KEYS = 100_000

    def __init__(self, policy: LockoutPolicy) -> None:
        self.policy = policy
        self._keys: dict[str, _Failures] = {}

    def wait(self, key: str, now: float) -> float:
        """Seconds before `key` may be tried again; 0 when it may now."""
        record = self._keys.get(key)
        if record is None:
            return 0.0
        if record.checking == 0 and now - record.last >= self.policy.forget_after:
            del self._keys[key]
            return 0.0
        locked = record.last + self.policy.lockout(record.count) - now
        if locked > 0:
            return locked
        if record.checking >= self.policy.concurrent(record.count):
            return self.policy.first_lockout
        return 0.0

    def begin(self, key: str, now: float) -> None:
        if key not in self._keys and len(self._keys) >= self.MAX_KEYS:
            self._forget_unlocked(now)
        self._keys.setdefault(key, _Failures()).checking += 1

    def end(self, key: str, now: float, *, failed: bool, reset: bool) -> None:
        record = self._keys[key]
        record.checking -= 1
        if failed:
            record.count, record.last = record.count + 1, now
        elif reset:
            record.count = 0
        if record.count == 0 and record.checking == 0:
            del self._keys[key]

    def _forget_unlocked(self, now: float) -> None:
        """Bound memory: drop keys that are neither locked nor being checked."""
        self._keys = {
            key: record
            for key, record in self._keys.items()
            if record.checking or record.last + self.policy.lockout(record.count) > now
        }


class SignInThrottle:
    """Failed sign-ins per account and per source address, with growing lockouts.

    While either is locked, an attempt is refused with `SignInThrottled` before any
    credential is looked at. State lives in this process's memory: a restart forgets
    it, and several processes would each count on their own. `clock` is monotonic
    seconds (injected by tests).
    """

    def __init__(
        self,
        accounts: LockoutPolicy = ACCOUNT_LOCKOUT,
        sources: LockoutPolicy = SOURCE_LOCKOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._accounts, self._sources = _Counter(accounts), _Counter(sources)
        self.clock = clock
        self._lock = threading.Lock()

    def check(self, account: str, source: str, verify: Callable[[], _T | None]) -> _T | None:
        """`verify()` unless `account` or `source` is locked out (SignInThrottled). A None
        result is a failure of both; anything else resets the account's failures. An
        exception (the store's, not the caller's) counts as neither."""
        with self._lock:
            now = self.clock()
            wait = max(self._accounts.wait(account, now), self._sources.wait(source, now))
            if wait > 0:
                raise SignInThrottled(wait)
            self._accounts.begin(account, now)
            self._sources.begin(source, now)
        failed: bool | None = None
        try:
            result = verify()
            failed = result is None
        finally:
            with self._lock:
                now = self.clock()
                if failed is None:  # verify raised: release without counting
                    self._accounts.end(account, now, failed=False, reset=False)
                    self._sources.end(source, now, failed=False, reset=False)
                else:
                    self._accounts.end(account, now, failed=failed, reset=True)
                    self._sources.end(source, now, failed=failed, reset=False)
        return result


class UserService:
    def __init__(
        self, store: Store, wallets: Wallets, sign_ins: SignInThrottle | None = None
    ) -> None:
        self.store = store
        self.wallets = wallets
        self.sign_ins = sign_ins or SignInThrottle()
        """Failed sign-ins of people and platform clients, over every channel (token
        endpoint, dashboard form)."""
        self.on_password: Callable[[str, str], object] = lambda _name, _password: None
        """Told (username, password) after each stored password, a new user's included:
        an external broker with its own password hashes needs it in clear, once."""
        self.on_change: Callable[[], object] = lambda: None
        """Told after a user is disabled or enabled."""

    def create(self, username: str, password: str, role: Role) -> User:
        if not valid_username(username):
            raise InvalidUser(
                "username must be 1-64 of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
            )
        self._check_password(password)
        if self.store.get_user(username) is not None:
            raise UserExists(f"user {username!r} exists")
        wallet, keystore = self.wallets.create()
        user = User(username, role, hash_password(password), wallet)
        self.store.add_user(user, keystore)
        self.on_password(username, password)
        return user

    def authenticate(self, username: str, password: str) -> User | None:
        """The enabled user with these credentials, or None (never says which part was wrong)."""
        user = self.store.get_user(username)
        if user is None:
            # Spend the same time as a real check so usernames cannot be probed by timing.
            verify_password(_DUMMY_HASH, password)
            return None
        if not verify_password(user.password_hash, password) or user.disabled:
            return None
        return user

    def sign_in(self, username: str, password: str, source: str) -> User | None:
        """`authenticate`, throttled per account and per source address: raises
        SignInThrottled while either is locked out; a success resets the account's
        failures."""
        account = "user:" + username[:100]  # longer names cannot exist; bound the key
        return self.sign_ins.check(account, source, lambda: self.authenticate(username, password))

    def end_sessions(self, username: str) -> None:
        """Sign a user out everywhere: every bearer token and dashboard session issued
        to it so far stops working at once."""
        if not self.store.revoke_user_tokens(username):
            raise LookupError(f"no user {username!r}")

    def set_disabled(self, username: str, disabled: bool, by: User) -> None:
        """Disable or enable a user; its MQTT logins stop or resume at once (every check
        reads the store). Disabling also revokes its tokens, sessions and its platform
        clients' tokens for good: enabling again does not bring them back. An admin
        cannot disable itself."""
        if disabled and username == by.username:
            raise InvalidUser("an admin cannot disable its own account")
        if not self.store.update_user(username, disabled=disabled):
            raise LookupError(f"no user {username!r}")
        if disabled:
            self.store.revoke_user_tokens(username, clients=True)
        self.on_change()

    def reset_password(self, username: str, password: str) -> None:
        """An admin sets a new password (e.g. for a user who lost theirs, or whose
        password leaked): the user's tokens and sessions end, so whoever held the old
        password holds nothing."""
        self._check_password(password)
        if not self.store.update_user(username, password_hash=hash_password(password)):
            raise LookupError(f"no user {username!r}")
        self.store.revoke_user_tokens(username)
        self.on_password(username, password)

    def change_password(self, user: User, current: str, new: str) -> None:
        """A user changes its own password, proving it knows the current one; all its
        tokens and sessions end (the caller's own too: sign in again)."""
        if not verify_password(user.password_hash, current):
            raise InvalidUser("the current password is wrong")
        self._check_password(new)
        self.store.update_user(user.username, password_hash=hash_password(new))
        self.store.revoke_user_tokens(user.username)
        self.on_password(user.username, new)

    @staticmethod
    def _check_password(password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidUser(f"password must have at least {MIN_PASSWORD_LENGTH} characters")

    def ensure_admin(self, password: str | None) -> str | None:
        """Create the first admin if there is none; returns a generated password to show once."""
        if self.store.has_role(Role.ADMIN):
            return None
        generated = None
        if password is None:
            generated = password = secrets.token_urlsafe(18)
        try:
            self.create("admin", password, Role.ADMIN)
        except UserExists:
            return None  # another node, started at the same time, made it first
        return generated


_DUMMY_HASH = hash_password(secrets.token_hex(16))
