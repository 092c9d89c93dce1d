"""Whose data a caller may see: one place for every route.

Admins see everything, producers their own data, consumers what their accepted,
unexpired grants cover (judged at every request). A reading the caller may not see is
answered exactly like one that does not exist.
"""

from __future__ import annotations

from fastapi import HTTPException

from platone_bal.api.context import ApiContext
from platone_bal.domain.grants import Access, Slice
from platone_bal.domain.readings import parse_time
from platone_bal.domain.users import User
from platone_bal.ports import StoredReading


def access_of(ctx: ApiContext, user: User) -> Access:
    return ctx.grants.access(user)


def may_read(access: Access, reading: StoredReading) -> bool:
    return access.can_read(
        reading.producer, reading.device, reading.measurand, parse_time(reading.time)
    )


def query_slices(access: Access, producer: str | None) -> tuple[Slice, ...] | None:
    """The slices a query (optionally for one producer) may return; 403 when the caller
    names a producer none of whose data it may see."""
    slices = access.of_producer(producer)
    if producer is not None and slices == ():
        raise HTTPException(403, f"no access to the data of {producer!r}")
    return slices
