"""Whose data a caller may see: one place for every route (and, later, grants).

Admins see everything and producers their own. Consumers will see what a producer's
accepted grant covers; until grants exist they see nothing (fail closed). A reading
the caller may not see is answered exactly like one that does not exist.
"""

from __future__ import annotations

from fastapi import HTTPException

from platone_bal.domain.users import Role, User


def may_read(user: User, producer: str) -> bool:
    return user.role is Role.ADMIN or (user.role is Role.PRODUCER and user.username == producer)


def visible_producer(user: User, wanted: str | None) -> str | bool | None:
    """The producer filter to apply to a query, None for all, False when nothing is visible."""
    if user.role is Role.ADMIN:
        return wanted
    if user.role is Role.PRODUCER:
        if wanted not in (None, user.username):
            raise HTTPException(403, f"no access to the data of {wanted!r}")
        return user.username
    if wanted is not None:
        raise HTTPException(403, f"no accepted grant for the data of {wanted!r}")
    return False
