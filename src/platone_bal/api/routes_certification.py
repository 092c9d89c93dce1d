"""Proofs, checkpoints, consistency, anchors and the Data Certification view (§6, §7).

Checkpoints and anchors are public commitments (sizes and roots, no data): any token
with the `verify` scope may list them. A proof carries a reading's leaf, so it follows the readings'
visibility: admin all, a producer its own; consumers until grants exist, nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from platone_bal.api.access import access_of, may_read
from platone_bal.api.audit import audit
from platone_bal.api.cursors import decode_cursor, encode_cursor
from platone_bal.api.deps import Context, Reader, RowId, Verifier
from platone_bal.api.gateway import anchored_json
from platone_bal.api.routes_readings import MAX_PAGE, ReadingFilter, whole_dataset
from platone_bal.ports import MAX_ROW_ID
from platone_bal.services.certification import (
    NotYetCertified,
    consistency,
    dataset_certification,
    proof_bundle,
)

router = APIRouter(prefix="/v1", tags=["certification"])


@router.get("/readings/{reading_id}/proof")
def reading_proof(reading_id: RowId, request: Request, ctx: Context, who: Reader) -> Any:
    """The proof bundle of one reading (ARCHITECTURE §6); `anchor` is null until anchored.

    Once anchored a proof never changes: it then carries an ETag and may be cached."""
    reading = ctx.store.reading(reading_id)
    if reading is None or not may_read(access_of(ctx, who.user), reading):
        raise HTTPException(404, f"no reading {reading_id} visible to you")
    try:
        bundle = proof_bundle(ctx.store, reading)
    except NotYetCertified as error:
        raise HTTPException(409, str(error), headers={"Retry-After": "1"}) from None
    audit(ctx, request, who, "proof.read", [reading.producer], 1)
    return anchored_json(request, bundle)


@router.get("/logs/{log}/checkpoints/{size}", responses={404: {"description": "Not signed"}})
def get_checkpoint(log: str, size: RowId, request: Request, ctx: Context, _: Verifier) -> Any:
    """One signed checkpoint with its anchor; immutable (ETag, cacheable) once anchored."""
    signed = ctx.store.checkpoint(log, size)
    if signed is None:
        raise HTTPException(404, f"no signed checkpoint of size {size} in {log!r}")
    anchor = ctx.store.anchor(log, size)
    body = {**signed.to_json(), "anchor": anchor.bundle_json() if anchor else None}
    return anchored_json(request, body)


@router.get("/logs/{log}/checkpoints")
def list_checkpoints(
    log: str,
    ctx: Context,
    _: Verifier,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: str | None = None,
    order: Literal["size", "newest"] = "size",
) -> dict[str, Any]:
    """Signed checkpoints of a log, smallest size first, each with its anchor if any;
    `order=newest`: the latest `limit` ones, largest first, in one page (a chart of a
    long-running log's recent growth)."""
    if order == "newest":
        rows = ctx.store.latest_checkpoints(log, limit)
        more = False
    else:
        rows = ctx.store.checkpoints(log, decode_cursor("c", cursor), limit)
        more = len(rows) == limit
    items = []
    for signed in rows:
        anchor = ctx.store.anchor(log, signed.checkpoint.size)
        items.append({**signed.to_json(), "anchor": anchor.bundle_json() if anchor else None})
    return {
        "items": items,
        "next_cursor": encode_cursor("c", rows[-1].checkpoint.size) if more else None,
    }


@router.get("/logs/{log}/consistency")
def log_consistency(
    log: str,
    ctx: Context,
    _: Verifier,
    first: Annotated[int, Query(alias="from", ge=1, le=MAX_ROW_ID)],
    second: Annotated[int, Query(alias="to", ge=1, le=MAX_ROW_ID)],
) -> dict[str, Any]:
    """RFC 9162 consistency proof: the tree of size `to` extends the tree of size `from`."""
    try:
        return consistency(ctx.store, log, first, second)
    except ValueError as error:
        raise HTTPException(400, str(error)) from None


@router.get("/anchors")
def list_anchors(
    ctx: Context,
    _: Verifier,
    log: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Checkpoints put on chain: log, size, root, chain, contract, transaction, block, time."""
    rows = ctx.store.anchors(log, decode_cursor("a", cursor), limit)
    items = [
        {
            "log": anchor.log,
            "size": anchor.size,
            "root": "0x" + anchor.root.hex(),
            "chain_id": anchor.chain_id,
            "contract": anchor.contract,
            "tx": anchor.tx,
            "block": anchor.block,
            "time": anchor.time,
        }
        for _, anchor in rows
    ]
    more = len(rows) == limit
    return {"items": items, "next_cursor": encode_cursor("a", rows[-1][0]) if more else None}


@router.get("/certifications")
def certify_dataset(
    request: Request,
    ctx: Context,
    who: Reader,
    device: str,
    producer: str | None = None,
    since: Annotated[str | None, Query(alias="from", description="RFC 3339, inclusive")] = None,
    until: Annotated[str | None, Query(alias="to", description="RFC 3339, exclusive")] = None,
) -> dict[str, Any]:
    """The seed's Data Certification of a dataset (a device and a time window):
    hashedData, owner, timestamp, dataset, transactionHash."""
    wanted = ReadingFilter.model_validate(
        {"producer": producer, "device": device, "from": since, "to": until}
    )
    readings = whole_dataset(ctx, who.user, wanted)
    if not readings:
        raise HTTPException(404, "the dataset holds no readings")
    dataset = {"device": device, "from": since, "to": until}
    audit(ctx, request, who, "certification.read", (r.producer for r in readings), len(readings))
    return dataset_certification(ctx.store, readings, dataset)
