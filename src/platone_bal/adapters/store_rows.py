"""Rows of the Shared Customer Database as both store backends read and write them.

SQLite and PostgreSQL keep the same tables with the same columns, so turning a row into
a domain object, and a domain object into its column values, is written once here: a
column then changes in both backends at once. The SQL stays in each backend. Where the
two keep a value as different SQL types (SQLite: times as RFC 3339 text, a scope's
names as JSON; PostgreSQL: timestamptz, text[]), a function takes the backend's
conversion as an argument (`unchanged` where psycopg already converts). A boolean is
passed as `bool`, which SQLite stores as the integer 0 or 1.
"""

from __future__ import annotations

from typing import Any

from platone_bal.domain.users import Client, Role, Scope, User

Row = tuple[Any, ...]

# users and platform clients

USER_COLUMNS = "username, role, password_hash, wallet, disabled, token_version"
"""What `user_from_row` reads, in its order."""
USER_INSERT_COLUMNS = "username, role, password_hash, wallet, keystore, disabled"
"""What `user_values` gives, in its order."""


def user_from_row(row: Row) -> User:
    username, role, password_hash, wallet, disabled, token_version = row
    return User(
        username=username,
        role=Role(role),
        password_hash=password_hash,
        wallet=wallet,
        disabled=bool(disabled),
        token_version=token_version,
    )


def user_values(user: User, keystore: str) -> Row:
    return (
        user.username,
        user.role.value,
        user.password_hash,
        user.wallet,
        keystore,
        user.disabled,
    )


CLIENT_COLUMNS = "client_id, name, username, scopes, secret_hash, disabled, token_version"
"""What `client_from_row` reads, in its order."""
CLIENT_INSERT_COLUMNS = "client_id, name, username, scopes, secret_hash, disabled"
"""What `client_values` gives, in its order."""


def client_from_row(row: Row) -> Client:
    client_id, name, username, scopes, secret_hash, disabled, token_version = row
    return Client(
        client_id,
        name,
        username,
        frozenset(Scope(scope) for scope in scopes.split()),
        secret_hash,
        bool(disabled),
        token_version,
    )


def client_values(client: Client) -> Row:
    """Scopes as one space-separated text, sorted."""
    return (
        client.client_id,
        client.name,
        client.username,
        " ".join(sorted(client.scopes)),
        client.secret_hash,
        client.disabled,
    )
