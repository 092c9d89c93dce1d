"""POST /v1/verify: data or proof bundles in, a verdict per item with its reason out."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from platone_bal.api.access import access_of, may_read
from platone_bal.api.audit import audit
from platone_bal.api.deps import Context, Verifier
from platone_bal.services.validation import Verdict, check_bundle, check_reading

router = APIRouter(prefix="/v1", tags=["certification"])

MAX_ITEMS = 1000


class VerifyRequest(BaseModel):
    """Give proof bundles (as from /v1/readings/{id}/proof) or readings (as from
    /v1/readings: `log` and `index`, or `id`, plus the fields to check)."""

    proofs: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_ITEMS)
    readings: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        examples=[[{"log": "bal-main", "index": 0, "value": "11.04", "device": "11111111"}]],
    )


class Check(BaseModel):
    name: str
    ok: bool | None
    detail: str


class ItemVerdict(BaseModel):
    kind: Literal["proof", "reading"]
    position: int = Field(description="Index of the item in its list")
    status: Literal["valid", "invalid", "pending"]
    reason: str
    checks: list[Check]


class VerifyAnswer(BaseModel):
    status: Literal["valid", "invalid", "pending"] = Field(
        description="invalid if any item is, else pending if any is, else valid"
    )
    items: list[ItemVerdict]


def overall(verdicts: list[Verdict]) -> Literal["valid", "invalid", "pending"]:
    statuses = {verdict.status for verdict in verdicts}
    if "invalid" in statuses:
        return "invalid"
    return "pending" if "pending" in statuses else "valid"


@router.post("/verify", response_model=VerifyAnswer)
def verify(body: VerifyRequest, request: Request, ctx: Context, who: Verifier) -> VerifyAnswer:
    """Check proof bundles (leaf, inclusion, signature, anchor on this node's chain) and
    readings (equal to their certified leaf, and proven down to the anchor)."""
    if not body.proofs and not body.readings:
        raise HTTPException(422, "give at least one proof or reading")
    lookup = ctx.anchor_lookup()
    access = access_of(ctx, who.user)
    verdicts: list[tuple[Literal["proof", "reading"], int, Verdict]] = [
        ("proof", n, check_bundle(bundle, lookup)) for n, bundle in enumerate(body.proofs)
    ]
    verdicts += [
        (
            "reading",
            n,
            check_reading(ctx.store, item, lookup, lambda reading: may_read(access, reading)),
        )
        for n, item in enumerate(body.readings)
    ]
    audit(ctx, request, who, "data.verify", (), len(body.proofs) + len(body.readings))
    return VerifyAnswer(
        status=overall([verdict for _, _, verdict in verdicts]),
        items=[
            ItemVerdict(kind=kind, position=n, **verdict.as_json()) for kind, n, verdict in verdicts
        ],
    )
