"""Users and platform clients on SQLite."""

from __future__ import annotations

import sqlite3

from platone_bal.adapters.sqlite.connection import SqliteDatabase
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


class SqliteUsers(SqliteDatabase):
    """UserStore and ClientStore."""

    def add_user(self, user: User, keystore: str) -> None:
        try:
            with self._transaction() as db:
                db.execute(
                    f"INSERT INTO users ({USER_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
                    user_values(user, keystore),
                )
        except sqlite3.IntegrityError:
            raise UserExists(f"user {user.username!r} exists") from None

    def get_user(self, username: str) -> User | None:
        query = f"SELECT {USER_COLUMNS} FROM users WHERE username = ?"  # noqa: S608
        row = self._connection().execute(query, (username,)).fetchone()
        return user_from_row(row) if row else None

    def list_users(self) -> list[User]:
        rows = self._connection().execute(
            f"SELECT {USER_COLUMNS} FROM users ORDER BY username"  # noqa: S608
        )
        return [user_from_row(row) for row in rows]

    def has_role(self, role: Role) -> bool:
        row = (
            self._connection()
            .execute("SELECT 1 FROM users WHERE role = ? LIMIT 1", (role.value,))
            .fetchone()
        )
        return row is not None

    def update_user(
        self, username: str, *, disabled: bool | None = None, password_hash: str | None = None
    ) -> bool:
        with self._transaction() as db:
            found = db.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone()
            if disabled is not None:
                db.execute(
                    "UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), username)
                )
            if password_hash is not None:
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE username = ?",
                    (password_hash, username),
                )
        return found is not None

    def user_keystore(self, username: str) -> str | None:
        row = (
            self._connection()
            .execute("SELECT keystore FROM users WHERE username = ?", (username,))
            .fetchone()
        )
        return str(row[0]) if row else None

    def revoke_user_tokens(self, username: str, *, clients: bool = False) -> bool:
        """One transaction, so no token outlives a disable half-done."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE users SET token_version = token_version + 1 WHERE username = ?",
                (username,),
            )
            if clients:
                db.execute(
                    "UPDATE clients SET token_version = token_version + 1 WHERE username = ?",
                    (username,),
                )
        return cursor.rowcount > 0

    # platform clients

    def add_client(self, client: Client) -> None:
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO clients ({CLIENT_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
                client_values(client),
            )

    def get_client(self, client_id: str) -> Client | None:
        query = f"SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = ?"  # noqa: S608
        row = self._connection().execute(query, (client_id,)).fetchone()
        return client_from_row(row) if row else None

    def list_clients(self) -> list[Client]:
        rows = self._connection().execute(
            f"SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created, client_id"  # noqa: S608
        )
        return [client_from_row(row) for row in rows]

    def disable_client(self, client_id: str) -> bool:
        """Disable a client for good; False when there is no such client."""
        with self._transaction() as db:
            cursor = db.execute("UPDATE clients SET disabled = 1 WHERE client_id = ?", (client_id,))
        return cursor.rowcount > 0

    def revoke_client_tokens(self, client_id: str) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE clients SET token_version = token_version + 1 WHERE client_id = ?",
                (client_id,),
            )
        return cursor.rowcount > 0
