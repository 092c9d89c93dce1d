"""Platform clients: registered by an admin, authenticated with client credentials.

The secret is shown once at registration and kept only as an argon2 hash, like a
password. A client acts for one user and never with more scopes than that user's role,
and with exactly the scopes it was registered with: `data:read` does not let it decide
grants (`grants:write`). Its tokens carry its token version: disabling the client (or
its user) revokes them all.
"""

from __future__ import annotations

import secrets

from platone_bal.adapters.passwords import hash_password, verify_password
from platone_bal.domain.users import ROLE_SCOPES, Client, Scope
from platone_bal.ports import Store


class InvalidClient(ValueError):
    """The registration asks for something the rules do not allow; the message says what."""


class ClientService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def register(self, name: str, username: str, scopes: frozenset[Scope]) -> tuple[Client, str]:
        """A new client and its secret (to show once)."""
        user = self.store.get_user(username)
        if user is None or user.disabled:
            raise InvalidClient(f"no enabled user {username!r} for the client to act for")
        if not name.strip() or len(name) > 100:
            raise InvalidClient("name must be 1-100 characters")
        if not scopes:
            raise InvalidClient("a client needs at least one scope")
        beyond = scopes - ROLE_SCOPES[user.role]
        if beyond:
            raise InvalidClient(
                f"a {user.role.value} cannot hold the scopes {', '.join(sorted(beyond))}"
            )
        secret = secrets.token_urlsafe(32)
        client = Client(
            client_id="bal-" + secrets.token_hex(8),
            name=name.strip(),
            username=username,
            scopes=scopes,
            secret_hash=hash_password(secret),
        )
        self.store.add_client(client)
        return client, secret

    def disable(self, client_id: str) -> None:
        """Disable a client for good and revoke its tokens (LookupError: no such client).
        The version is raised as well as the flag, so no later change of the flag could
        bring an old token back."""
        if not self.store.disable_client(client_id):
            raise LookupError(f"no client {client_id!r}")
        self.revoke_tokens(client_id)

    def revoke_tokens(self, client_id: str) -> None:
        """End every token the client holds; it may ask for new ones (e.g. a platform
        that believes a token leaked). LookupError: no such client."""
        if not self.store.revoke_client_tokens(client_id):
            raise LookupError(f"no client {client_id!r}")

    def authenticate(self, client_id: str, secret: str) -> Client | None:
        """The enabled client with these credentials, or None (never says which part)."""
        client = self.store.get_client(client_id)
        if client is None:
            verify_password(_DUMMY_HASH, secret)  # same time as a real check
            return None
        if not verify_password(client.secret_hash, secret) or client.disabled:
            return None
        return client


_DUMMY_HASH = hash_password(secrets.token_hex(16))
