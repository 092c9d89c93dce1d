"""The dashboard's pages: server-rendered HTML on the same services as the API.

Each role has a home: consumers browse producers, ask for grants and chart what they
may read; producers decide requests, revoke grants, watch their devices and chart
their data; admins manage users and devices and watch the pipeline. Everyone has the
explorer (anchors, log growth, a reading's way from payload to chain) and the
verifier (a proof bundle checked step by step, its Merkle path drawn).

Forms post back here (CSRF-checked) and redirect (303) to the page with a notice;
charts fetch JSON from the API with the page's bearer token.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import rfc8785
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from platone_bal import __version__
from platone_bal.api.access import access_of, may_read
from platone_bal.api.context import ApiContext
from platone_bal.api.deps import source_address
from platone_bal.codecs import json_depth
from platone_bal.domain.devices import DeviceKind
from platone_bal.domain.grants import Grant, GrantError, GrantStatus, Slice
from platone_bal.domain.merkle import SHA3_256, inclusion_steps
from platone_bal.domain.proof import verify_bundle
from platone_bal.domain.readings import parse_time
from platone_bal.domain.users import Role, User
from platone_bal.ports import RejectionQuery, StoredReading, UserExists
from platone_bal.services.certification import NotYetCertified, proof_bundle
from platone_bal.services.devices import InvalidDevice
from platone_bal.services.grants import GrantNotFound
from platone_bal.services.users import InvalidUser, SignInThrottled
from platone_bal.web.session import (
    api_token,
    check_csrf,
    csrf_token,
    sign_in,
    sign_out,
    signed_in,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

HOME = {Role.CONSUMER: "/consumer", Role.PRODUCER: "/producer", Role.ADMIN: "/admin"}


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(context)]
Csrf = Annotated[str, Form(alias="csrf")]


def page(request: Request, ctx: ApiContext, user: User | None, name: str, **data: Any) -> Response:
    """Render `name` with what every page needs: the user, CSRF and API tokens, notices."""
    values = {
        "user": user,
        "csrf": csrf_token(request),
        "api_token": api_token(ctx, user) if user else None,
        "notice": request.query_params.get("notice"),
        "problem": request.query_params.get("problem"),
        "version": __version__,
        **data,
    }
    return templates.TemplateResponse(request, name, values)


def back(path: str, *, notice: str | None = None, problem: str | None = None) -> Response:
    """Post/redirect/get: the page again, with what happened in words."""
    if notice:
        path += f"?notice={quote(notice)}"
    elif problem:
        path += f"?problem={quote(problem)}"
    return RedirectResponse(path, status_code=303)


def when(value: datetime | str | None) -> str:
    """A time as people read it in a control room: UTC, to the second."""
    if value is None:
        return "—"
    moment = parse_time(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["when"] = when


def _items(text: str | None) -> frozenset[str] | None:
    """A comma-separated form field as a set; empty means no limit."""
    values = frozenset(v.strip() for v in (text or "").split(",") if v.strip())
    return values or None


def _moment(text: str | None) -> datetime | None:
    """A datetime-local form value, read as UTC."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _audit_grant(ctx: ApiContext, user: User, request: Request, grant: Grant) -> None:
    ctx.audit.record(
        user.username, "web", f"grant.{grant.status.value}", [grant.producer], request.url.path, 0
    )


# sign in and out


@router.get("/")
def home(request: Request, ctx: Context) -> Response:
    user = signed_in(request, ctx)
    return RedirectResponse(HOME[user.role], status_code=303)


@router.get("/login")
def login_page(request: Request, ctx: Context) -> Response:
    return page(request, ctx, None, "login.html")


@router.post("/login")
def login(
    request: Request,
    ctx: Context,
    csrf: Csrf,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    check_csrf(request, csrf)
    try:
        user = ctx.users.sign_in(username, password, source_address(request))
    except SignInThrottled as refusal:
        # 429 like the token endpoint; the same words whether the account exists or not.
        seconds = refusal.seconds
        wait = f"{seconds} second" + ("" if seconds == 1 else "s")
        error = f"Too many failed sign-ins. Try again in {wait}."
        answer = page(request, ctx, None, "login.html", error=error, username=username)
        answer.status_code = 429
        answer.headers["Retry-After"] = str(seconds)
        return answer
    if user is None:
        # The form again, with the error (200: 401 would need a WWW-Authenticate
        # challenge, which a form login does not have).
        return page(
            request,
            ctx,
            None,
            "login.html",
            error="Wrong username or password, or the account is disabled.",
            username=username,
        )
    sign_in(request, user)
    return RedirectResponse(HOME[user.role], status_code=303)


@router.post("/logout")
def logout(request: Request, ctx: Context, csrf: Csrf) -> Response:
    """Sign out everywhere: this cookie, any copy of it and the user's bearer tokens
    (the page's included) stop working."""
    check_csrf(request, csrf)
    sign_out(request, ctx)
    return back("/login", notice="You are signed out.")


# consumer


@router.get("/consumer")
def consumer_home(request: Request, ctx: Context) -> Response:
    user = signed_in(request, ctx)
    now = ctx.grants.clock()
    grants = ctx.grants.grants_of(user)
    producers = ctx.grants.producers_for(user)
    readable = sorted({g.producer for g in grants if g.active(now)})
    return page(
        request,
        ctx,
        user,
        "consumer.html",
        producers=producers,
        grants=grants,
        now=now,
        readable=readable,
    )


class GrantForm(BaseModel):
    """A grant form: the CSRF token, optional limits (comma-separated lists, a UTC
    datetime-local) and the reason, as the request, accept and refuse forms send them."""

    csrf: str
    producer: str | None = None
    devices: str | None = None
    measurands: str | None = None
    expires: str | None = None
    reason: str | None = None


@router.post("/consumer/grants")
def request_grant(request: Request, ctx: Context, form: Annotated[GrantForm, Form()]) -> Response:
    user = signed_in(request, ctx)
    check_csrf(request, form.csrf)
    producer = form.producer or ""
    try:
        scope = Slice(producer, _items(form.devices), _items(form.measurands))
        grant = ctx.grants.request(user, scope, _moment(form.expires), form.reason or None)
    except (GrantError, GrantNotFound, ValueError) as error:
        return back("/consumer", problem=f"Not requested: {error}")
    _audit_grant(ctx, user, request, grant)
    return back("/consumer", notice=f"Access to {producer}'s data requested (grant {grant.id}).")


@router.post("/grants/{grant_id}/{decision}")
def decide_grant(
    grant_id: int,
    decision: str,
    request: Request,
    ctx: Context,
    form: Annotated[GrantForm, Form()],
) -> Response:
    """accept (optionally narrowed) | refuse | revoke, by whoever may."""
    user = signed_in(request, ctx)
    check_csrf(request, form.csrf)
    reason = form.reason or None
    home_page = HOME[user.role]
    try:
        if decision == "accept":
            asked = ctx.grants.get(grant_id, user).scope
            narrowed = asked.narrowed(_items(form.devices), _items(form.measurands))
            grant = ctx.grants.accept(grant_id, user, narrowed, _moment(form.expires))
        elif decision == "refuse":
            grant = ctx.grants.refuse(grant_id, user, reason)
        elif decision == "revoke":
            grant = ctx.grants.revoke(grant_id, user, reason)
        else:
            return back(home_page, problem=f"Unknown decision {decision!r}.")
    except (GrantError, GrantNotFound, ValueError) as error:
        return back(home_page, problem=f"Grant {grant_id} not changed: {error}")
    _audit_grant(ctx, user, request, grant)
    return back(home_page, notice=f"Grant {grant_id} is now {grant.status.value}.")


# producer


@router.get("/producer")
def producer_home(request: Request, ctx: Context) -> Response:
    return _producer_page(request, ctx, signed_in(request, ctx))


def _producer_page(request: Request, ctx: ApiContext, user: User, **extra: Any) -> Response:
    now = ctx.grants.clock()
    grants = ctx.grants.grants_of(user)
    requests = [g for g in grants if g.status_at(now) is GrantStatus.REQUESTED]
    active = [g for g in grants if g.status_at(now) is GrantStatus.ACCEPTED]
    hour_ago = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    activity = ctx.store.device_activity(user.username, hour_ago)
    registered = {d.device_id: d for d in ctx.store.list_devices(user.username)}
    devices = [
        {
            "id": name,
            "kind": registered[name].kind.value if name in registered else "not registered",
            "login": registered[name].login if name in registered else None,
            "disabled": registered[name].disabled if name in registered else False,
            "last_seen": activity.get(name, (None, 0))[0],
            "per_minute": round(activity.get(name, (None, 0))[1] / 60, 2),
        }
        for name in sorted(set(registered) | set(activity))
    ]
    rejections = ctx.store.rejections(
        RejectionQuery(producer=user.username, limit=10, newest_first=True)
    )
    return page(
        request,
        ctx,
        user,
        "producer.html",
        requests=requests,
        active=active,
        now=now,
        devices=devices,
        rejections=rejections,
        kinds=[k.value for k in DeviceKind],
        **extra,
    )


@router.post("/devices")
def register_device(
    request: Request,
    ctx: Context,
    csrf: Csrf,
    device_id: Annotated[str, Form()],
    kind: Annotated[DeviceKind, Form()],
    public_key: Annotated[str | None, Form()] = None,
    credentials: Annotated[bool, Form()] = False,
    producer: Annotated[str | None, Form()] = None,
) -> Response:
    """A producer registers its device (an admin: any producer's). An MQTT password is
    shown once, on the page this answers with, never in a URL."""
    user = signed_in(request, ctx)
    check_csrf(request, csrf)
    owner = user
    if user.role is Role.ADMIN and producer:
        found = ctx.store.get_user(producer)
        if found is None:
            return back("/admin", problem=f"No producer {producer}.")
        owner = found
    try:
        device, secret = ctx.devices.register(
            owner, device_id, kind, public_key or None, credentials
        )
    except (InvalidDevice, UserExists) as error:
        return back(HOME[user.role], problem=f"Device not registered: {error}")
    shown = {"created_device": device, "created_secret": secret}
    if user.role is Role.ADMIN:
        return _admin_page(request, ctx, user, **shown)
    return _producer_page(request, ctx, user, **shown)


# admin


@router.get("/admin")
def admin_home(request: Request, ctx: Context) -> Response:
    user = signed_in(request, ctx)
    if user.role is not Role.ADMIN:
        return back(HOME[user.role], problem="That page is for administrators.")
    return _admin_page(request, ctx, user)


def _admin_page(request: Request, ctx: ApiContext, user: User, **extra: Any) -> Response:
    log = ctx.ingest.log_id
    size = ctx.store.log_size(log)
    anchor = ctx.store.latest_anchor(log)
    checkpoint = ctx.store.latest_checkpoint(log)
    lookup = ctx.anchor_lookup()
    return page(
        request,
        ctx,
        user,
        "admin.html",
        users=ctx.store.list_users(),
        devices=ctx.store.list_devices(None),
        rejections=ctx.store.rejections(RejectionQuery(limit=20, newest_first=True)),
        log=log,
        size=size,
        checkpoint=checkpoint,
        anchor=anchor,
        anchor_lag=size - (anchor.size if anchor else 0),
        status={"Chain": "open" if lookup is not None else "not open yet", **ctx.node_status()},
        roles=[r.value for r in Role],
        kinds=[k.value for k in DeviceKind],
        producers=[u.username for u in ctx.store.list_users() if u.role is Role.PRODUCER],
        **extra,
    )


@router.post("/admin/users")
def create_user(
    request: Request,
    ctx: Context,
    csrf: Csrf,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[Role, Form()],
) -> Response:
    admin = signed_in(request, ctx)
    check_csrf(request, csrf)
    if admin.role is not Role.ADMIN:
        return back(HOME[admin.role], problem="Only administrators create users.")
    try:
        ctx.users.create(username, password, role)
    except (InvalidUser, UserExists) as error:
        return back("/admin", problem=f"User not created: {error}")
    return back("/admin", notice=f"User {username} ({role.value}) created.")


@router.post("/admin/users/{username}/{action}")
def enable_user(username: str, action: str, request: Request, ctx: Context, csrf: Csrf) -> Response:
    admin = signed_in(request, ctx)
    check_csrf(request, csrf)
    if admin.role is not Role.ADMIN or action not in ("disable", "enable"):
        return back(HOME[admin.role], problem="Only administrators disable or enable users.")
    try:
        ctx.users.set_disabled(username, action == "disable", admin)
    except (InvalidUser, LookupError) as error:
        return back("/admin", problem=f"User {username} not changed: {error}")
    return back("/admin", notice=f"User {username} {action}d.")


@router.post("/devices/{producer}/{device_id}/disable")
def disable_device(
    producer: str, device_id: str, request: Request, ctx: Context, csrf: Csrf
) -> Response:
    user = signed_in(request, ctx)
    check_csrf(request, csrf)
    if user.role is not Role.ADMIN and user.username != producer:
        return back(HOME[user.role], problem="Only the owner or an administrator may do that.")
    if ctx.devices.disable(producer, device_id) is None:
        return back(HOME[user.role], problem=f"No device {device_id} of {producer}.")
    return back(HOME[user.role], notice=f"Device {device_id} disabled.")


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
    return page(request, ctx, user, "verify.html", text=text, result=None)


@router.post("/verify")
async def verify_proof(
    request: Request,
    ctx: Context,
    csrf: Csrf,
    proof: Annotated[str, Form()] = "",
    upload: Annotated[UploadFile | None, File()] = None,
) -> Response:
    user = signed_in(request, ctx)
    check_csrf(request, csrf)
    text = proof
    if upload is not None and upload.filename:
        text = (await upload.read(1 << 20)).decode("utf-8", "replace")
    return page(request, ctx, user, "verify.html", text=text, result=_verdict(ctx, text))


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


# assets


@router.get("/static/vendor/plotly.min.js")
def plotly_js() -> Response:
    """Plotly.js from the installed `plotly` package: no CDN, no internet."""
    bundled = resources.files("plotly") / "package_data" / "plotly.min.js"
    with resources.as_file(bundled) as path:
        return FileResponse(path, media_type="text/javascript", headers=_LONG_CACHE)


_LONG_CACHE = {"Cache-Control": "public, max-age=86400"}


def not_signed_in(request: Request) -> Response:
    """Pages redirect to the login page; file downloads answer 401."""
    if request.url.path.startswith("/proofs/"):
        return JSONResponse({"detail": "sign in first"}, 401)
    return RedirectResponse("/login", status_code=303)


def bad_csrf(_: Request) -> Response:
    return HTMLResponse(
        "<!doctype html><title>Form expired</title><p>This form has expired or did not come"
        " from this site. <a href='/'>Reload the dashboard</a> and try again.</p>",
        status_code=403,
    )
