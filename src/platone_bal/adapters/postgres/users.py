"""People and platform clients: UserStore and ClientStore.

Token versions only grow, and a revoke raises a user's and its clients' in one
transaction, so no token outlives a disable half-done.
"""

from __future__ import annotations

import psycopg

from platone_bal.adapters.postgres.base import PoolUser, unavailable_on_faults
from platone_bal.adapters.store_rows import (
    CLIENT_COLUMNS,
    CLIENT_INSERT_COLUMNS,
    USER_COLUMNS,
    USER_INSERT_COLUMNS,
    client_from_row,
    client_values,
    user_from_row,
    user_values,
)
from platone_bal.domain.users import Client, Role, User
from platone_bal.ports import UserExists


@unavailable_on_faults
class UserTables(PoolUser):
    """UserStore and ClientStore."""

    # users

    def add_user(self, user: User, keystore: str) -> None:
        try:
            self._run(
                f"INSERT INTO users ({USER_INSERT_COLUMNS})"  # noqa: S608 (constant)
                " VALUES (%s, %s, %s, %s, %s, %s)",
                user_values(user, keystore),
            )
        except psycopg.IntegrityError:
            raise UserExists(f"user {user.username!r} exists") from None

    def get_user(self, username: str) -> User | None:
        row = self._one(f"SELECT {USER_COLUMNS} FROM users WHERE username = %s", (username,))  # noqa: S608
        return user_from_row(row) if row else None

    def list_users(self) -> list[User]:
        rows = self._all(f"SELECT {USER_COLUMNS} FROM users ORDER BY username")  # noqa: S608
        return [user_from_row(row) for row in rows]

    def has_role(self, role: Role) -> bool:
        return self._one("SELECT 1 FROM users WHERE role = %s LIMIT 1", (role.value,)) is not None

    def update_user(
        self, username: str, *, disabled: bool | None = None, password_hash: str | None = None
    ) -> bool:
        changed = self._run(
            "UPDATE users SET disabled = COALESCE(%s, disabled),"
            " password_hash = COALESCE(%s, password_hash) WHERE username = %s",
            (disabled, password_hash, username),
        )
        return changed > 0

    def user_keystore(self, username: str) -> str | None:
        row = self._one("SELECT keystore FROM users WHERE username = %s", (username,))
        return str(row[0]) if row else None

    def revoke_user_tokens(self, username: str, *, clients: bool = False) -> bool:
        with self._pool.connection() as conn, conn.transaction():
            changed = conn.execute(
                "UPDATE users SET token_version = token_version + 1 WHERE username = %s",
                (username,),
            ).rowcount
            if clients:
                conn.execute(
                    "UPDATE clients SET token_version = token_version + 1 WHERE username = %s",
                    (username,),
                )
        return changed > 0

    # platform clients

    def add_client(self, client: Client) -> None:
        self._run(
            f"INSERT INTO clients ({CLIENT_INSERT_COLUMNS})"  # noqa: S608 (constant)
            " VALUES (%s, %s, %s, %s, %s, %s)",
            client_values(client),
        )

    def get_client(self, client_id: str) -> Client | None:
        row = self._one(
            f"SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = %s",  # noqa: S608
            (client_id,),
        )
        return client_from_row(row) if row else None

    def list_clients(self) -> list[Client]:
        rows = self._all(
            f"SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created, client_id"  # noqa: S608
        )
        return [client_from_row(row) for row in rows]

    def disable_client(self, client_id: str) -> bool:
        return (
            self._run("UPDATE clients SET disabled = true WHERE client_id = %s", (client_id,)) > 0
        )

    def revoke_client_tokens(self, client_id: str) -> bool:
        changed = self._run(
            "UPDATE clients SET token_version = token_version + 1 WHERE client_id = %s",
            (client_id,),
        )
        return changed > 0
