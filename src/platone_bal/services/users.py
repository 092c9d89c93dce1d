"""Creating and authenticating users.

A user created here can at once log in to the API and connect to MQTT with the same
username and password: the API and the embedded broker check the same argon2 hash in
the store; an external broker gets the password through `on_password`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from platone_bal.adapters.passwords import hash_password, verify_password
from platone_bal.adapters.wallets import Wallets
from platone_bal.domain.users import Role, User, valid_username
from platone_bal.ports import Store, UserExists

MIN_PASSWORD_LENGTH = 8


class InvalidUser(ValueError):
    """The username or password does not meet the rules; the message says which."""


class UserService:
    def __init__(self, store: Store, wallets: Wallets) -> None:
        self.store = store
        self.wallets = wallets
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

    def set_disabled(self, username: str, disabled: bool, by: User) -> None:
        """Disable or enable a user; its tokens, MQTT logins and clients stop or resume
        at once (every check reads the store). An admin cannot disable itself."""
        if disabled and username == by.username:
            raise InvalidUser("an admin cannot disable its own account")
        if not self.store.update_user(username, disabled=disabled):
            raise LookupError(f"no user {username!r}")
        self.on_change()

    def reset_password(self, username: str, password: str) -> None:
        """An admin sets a new password (e.g. for a user who lost theirs)."""
        self._check_password(password)
        if not self.store.update_user(username, password_hash=hash_password(password)):
            raise LookupError(f"no user {username!r}")
        self.on_password(username, password)

    def change_password(self, user: User, current: str, new: str) -> None:
        """A user changes its own password, proving it knows the current one."""
        if not verify_password(user.password_hash, current):
            raise InvalidUser("the current password is wrong")
        self._check_password(new)
        self.store.update_user(user.username, password_hash=hash_password(new))
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
        self.create("admin", password, Role.ADMIN)
        return generated


_DUMMY_HASH = hash_password(secrets.token_hex(16))
