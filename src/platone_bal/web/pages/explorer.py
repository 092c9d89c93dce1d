"""The pages every role has: the explorer (anchors, log growth, a reading's way from
payload to chain) and the verifier (a proof bundle checked step by step, its Merkle
path drawn: in the browser by `static/verifier.js`, or on the server as a fallback),
with the proof download. A reading shows only to whoever may read it, and
each one shown is on the access log."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import rfc8785
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from platone_bal.api.access import access_of, may_read
from platone_bal.api.context import ApiContext
from platone_bal.codecs import json_depth
from platone_bal.domain.merkle import SHA3_256, inclusion_steps
from platone_bal.domain.proof import LEAF_KEYS, PROOF_FORMAT, verify_bundle
from platone_bal.domain.setpoints import LEAF_KEYS as SETPOINT_LEAF_KEYS
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.domain.users import User
from platone_bal.ports import StoredReading
from platone_bal.services.certification import NotYetCertified, proof_bundle
from platone_bal.web.pages.rendering import Context, Csrf, page
from platone_bal.web.pages.setpoints import recent_setpoints
from platone_bal.web.session import check_csrf, signed_in

router = APIRouter(include_in_schema=False)


# explorer


@router.get("/explorer")
def explorer(request: Request, ctx: Context, reading: int | None = None) -> Response:
    user = signed_in(request, ctx)
    log = ctx.ingest.log_id
    path = None
    if reading is not None:
        path = _reading_path(ctx, user, request, reading)
    return page(
        request,
        ctx,
        user,
        "explorer.html",
        log=log,
        size=ctx.store.log_size(log),
        anchors=ctx.store.latest_anchors(log, 50),
        reading=reading,
        path=path,
        setpoints=recent_setpoints(ctx, user),
        setpoint_anchors=ctx.store.latest_anchors(SETPOINT_LOG, 10),
    )


def _reading_path(
    ctx: ApiContext, user: User, request: Request, reading_id: int
) -> dict[str, Any] | None:
    """Payload -> reading -> leaf -> checkpoint -> anchor, for a reading the user may read."""
    stored = _readable(ctx, user, reading_id)
    if stored is None:
        return None
    ctx.audit.record(user.username, "web", "reading.path", [stored.producer], request.url.path, 1)
    checkpoint = ctx.store.checkpoint_covering(stored.log, stored.index)
    size = checkpoint.checkpoint.size if checkpoint else None
    anchor = ctx.store.anchor(stored.log, size) if size else None
    leaf = ctx.store.leaf_bytes(stored.log, stored.index) or b""
    return {
        "reading": stored,
        "leaf_hash": "0x" + SHA3_256.hash_leaf(leaf).hex(),
        "leaf": json.dumps(json.loads(leaf), indent=2) if leaf else "",
        "checkpoint": checkpoint,
        "anchor": anchor,
    }


# verifier


@router.get("/verify")
def verify_page(request: Request, ctx: Context, reading: int | None = None) -> Response:
    user = signed_in(request, ctx)
    text = ""
    if reading is not None:
        bundle = _proof_of(ctx, user, request, reading)
        text = json.dumps(bundle, indent=2) if bundle else ""
    rpc = _node_rpc(request, ctx)
    return _verify_page(request, ctx, user, text=text, rpc=rpc, result=None)


@router.post("/verify")
async def verify_proof(
    request: Request,
    ctx: Context,
    csrf: Csrf,
    proof: Annotated[str, Form()] = "",
    upload: Annotated[UploadFile | None, File()] = None,
    rpc: Annotated[str, Form()] = "",
) -> Response:
    """The server's verdict: the fallback for a browser without the page's scripts, or
    a person who asks for it. `rpc` only comes back in the form; the server checks the
    anchor on its own chain, never at a URL a user gave (it would fetch for anyone)."""
    user = signed_in(request, ctx)
    check_csrf(request, csrf)
    text = proof
    if upload is not None and upload.filename:
        text = (await upload.read(1 << 20)).decode("utf-8", "replace")
    return _verify_page(request, ctx, user, text=text, rpc=rpc, result=_verdict(ctx, text))


def _verify_page(
    request: Request, ctx: ApiContext, user: User, *, text: str, rpc: str, result: Any
) -> Response:
    return page(
        request,
        ctx,
        user,
        "verify.html",
        text=text,
        rpc=rpc,
        default_rpc=_node_rpc(request, ctx),
        verifier=verifier_contract(),
        result=result,
    )


def _node_rpc(request: Request, ctx: ApiContext) -> str:
    """The node's own read-only JSON-RPC as this browser reaches the node (same host,
    the RPC's port and scheme), the verifier's default anchor endpoint; "" without one.

    A node on an external chain (BAL_CHAIN=rpc) offers none: its chain URL may be
    private or carry an API key, so the reader names a node of that chain."""
    port = ctx.chain_rpc_port
    if not port:
        return ""
    host = request.url.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host  # an IPv6 literal
    return f"{request.url.scheme}://{host}:{port}"


VENDOR_MANIFEST = Path(__file__).parents[1] / "static" / "vendor" / "manifest.json"
"""The vendored npm files the verifier page loads, with versions and SHA-256 digests."""


@cache
def verifier_contract() -> dict[str, Any]:
    """What the page's own checks take from the node's definitions, so that the
    browser and `verify_bundle` refuse the same bundles: the proof format, the leaf keys
    of each log, and (to name them on the page) the vendored libraries.

    Served in the page like the scripts themselves: a reader who doubts them doubts the
    whole page, and runs `bal verify` instead."""
    manifest = json.loads(VENDOR_MANIFEST.read_text())
    return {
        "format": PROOF_FORMAT,
        "hash": "sha3-256",
        "leaf_keys": sorted(LEAF_KEYS),
        "setpoint_log": SETPOINT_LOG,
        "setpoint_leaf_keys": {kind: sorted(keys) for kind, keys in SETPOINT_LEAF_KEYS.items()},
        "packages": [
            {"name": package["name"], "version": package["version"]}
            for package in manifest["packages"]
        ],
    }


def _verdict(ctx: ApiContext, text: str) -> dict[str, Any]:
    """Each check of the bundle, and the Merkle path from its leaf to the root."""
    try:
        bundle = json_depth.loads(text)
    except ValueError as error:
        return {"valid": False, "checks": [("format", False, f"not JSON: {error}")], "steps": []}
    checks = verify_bundle(bundle, ctx.anchor_lookup())
    valid = all(c.ok is not False for c in checks)
    return {
        "valid": valid,
        "checks": [(c.name, c.ok, c.detail) for c in checks],
        "steps": _steps(bundle) if checks[0].ok else [],
    }


def _steps(bundle: dict[str, Any]) -> list[dict[str, str]]:
    leaf_hash = SHA3_256.hash_leaf(bytes(rfc8785.dumps(bundle["leaf"])))
    path = [bytes.fromhex(h.removeprefix("0x")) for h in bundle["inclusion"]]
    size = bundle["checkpoint"]["size"]
    steps = inclusion_steps(SHA3_256, bundle["index"], size, leaf_hash, path) or []
    drawn = [{"hash": "0x" + leaf_hash.hex(), "sibling": "", "side": "leaf"}]
    drawn += [
        {"hash": "0x" + s.result.hex(), "sibling": "0x" + s.sibling.hex(), "side": s.side}
        for s in steps
    ]
    return drawn


def _readable(ctx: ApiContext, user: User, reading_id: int) -> StoredReading | None:
    """The reading if `user` may read it; None also when it does not exist (no hint)."""
    stored = ctx.store.reading(reading_id)
    return stored if stored is not None and may_read(access_of(ctx, user), stored) else None


def _proof_of(
    ctx: ApiContext, user: User, request: Request, reading_id: int
) -> dict[str, Any] | None:
    stored = _readable(ctx, user, reading_id)
    if stored is None:
        return None
    try:
        bundle = proof_bundle(ctx.store, stored)
    except NotYetCertified:
        return None
    ctx.audit.record(user.username, "web", "proof.read", [stored.producer], request.url.path, 1)
    return bundle


@router.get("/proofs/{reading_id}.json")
def download_proof(reading_id: int, request: Request, ctx: Context) -> Response:
    """The proof bundle as a file, for `bal verify` or the verifier."""
    user = signed_in(request, ctx)
    bundle = _proof_of(ctx, user, request, reading_id)
    if bundle is None:
        return JSONResponse({"detail": f"no certified reading {reading_id} visible to you"}, 404)
    return JSONResponse(
        bundle,
        headers={"Content-Disposition": f'attachment; filename="proof-{reading_id}.json"'},
    )
