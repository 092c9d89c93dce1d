"""The API's side of the access audit: one call per data access or grant change, and
GET /v1/audit to read the log (admins all; others their own acts and accesses to their
data)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from platone_bal.api.context import ApiContext
from platone_bal.api.cursors import decode_cursor, encode_cursor
from platone_bal.api.deps import Context, Principal, Reader
from platone_bal.domain.users import Role

router = APIRouter(prefix="/v1", tags=["audit"])


def actor(who: Principal) -> str:
    """The user, and the platform client it acted through, if any."""
    return who.user.username + (f" via {who.client_id}" if who.client_id else "")


def audit(
    ctx: ApiContext,
    request: Request,
    who: Principal,
    action: str,
    producers: Iterable[str],
    count: int,
) -> None:
    """Record an HTTP access before its answer is sent."""
    query = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    ctx.audit.record(actor(who), "http", action, producers, query, count)


@router.get("/audit")
def read_audit(
    ctx: Context,
    who: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Entries of the bal-audit log with their index (its proofs and checkpoints are at
    /v1/logs/bal-audit/...): admins see all; a producer its own acts and every access to
    its data; a consumer its own acts."""
    after = decode_cursor("u", cursor) - 1 if cursor else -1
    user = who.user
    if user.role is Role.ADMIN:
        rows = ctx.store.audit_entries(after=after, limit=limit)
    elif user.role is Role.PRODUCER:
        rows = ctx.store.audit_entries(
            who=user.username, producer=user.username, after=after, limit=limit
        )
    else:
        rows = ctx.store.audit_entries(who=user.username, after=after, limit=limit)
    items = [{"index": index, **json.loads(leaf)} for index, leaf in rows]
    more = len(rows) == limit
    return {"items": items, "next_cursor": encode_cursor("u", rows[-1][0] + 1) if more else None}
