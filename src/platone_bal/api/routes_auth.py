"""POST /oauth/token: the OAuth2 token endpoint (RFC 6749).

Two grants: `password` for people (§4.3) and `client_credentials` for platforms the
admin registered (§4.4; the client authenticates with HTTP Basic or form fields,
§2.3.1). No refresh tokens: when a token expires, ask for a new one the same way
(RFC 6749 §4.4.3 advises against refresh tokens for client credentials).

Failed attempts are throttled per account (username or client id) and per source
address (`services.users.SignInThrottle`): while either is locked out the answer is 429
`slow_down` with Retry-After, whether or not the account exists, and the credentials are
not checked. A token carries its user's (or client's) token version.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Form, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from platone_bal.api.context import ApiContext
from platone_bal.api.deps import Context, source_address
from platone_bal.domain.users import ROLE_SCOPES, Client, Scope, User
from platone_bal.services.users import SignInThrottled

router = APIRouter(tags=["auth"])


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (OAuth2 token type, not a secret)
    expires_in: int = Field(description="seconds until the token expires")
    scope: str = Field(description="space-separated scopes the token carries")


class OAuthError(BaseModel):
    error: str
    error_description: str


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    """Token endpoint errors use RFC 6749 §5.2 bodies, not problem documents."""
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="bal"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _throttled(refusal: SignInThrottled) -> JSONResponse:
    """429 with Retry-After; `slow_down` is the registered OAuth error for "ask less
    often" (RFC 8628 §3.5). The same answer for every account, existing or not."""
    answer = _oauth_error(
        "slow_down", f"too many failed sign-ins; retry in {refusal.seconds} s", 429
    )
    answer.headers["Retry-After"] = str(refusal.seconds)
    return answer


def _client_owner(ctx: ApiContext, client_id: str, secret: str) -> tuple[Client, User] | None:
    """The enabled client with these credentials and its enabled user, or None."""
    client = ctx.clients.authenticate(client_id, secret)
    owner = ctx.store.get_user(client.username) if client else None
    if client is None or owner is None or owner.disabled:
        return None
    return client, owner


def _requested(scope: str | None, allowed: frozenset[Scope]) -> frozenset[Scope] | None:
    """The scopes to grant: all allowed when none asked, None when asked beyond them."""
    if not scope:
        return allowed
    try:
        asked = frozenset(Scope(name) for name in scope.split())
    except ValueError:
        return None
    return asked if asked <= allowed else None


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


@router.post(
    "/oauth/token",
    response_model=TokenAnswer,
    responses={
        400: {"model": OAuthError, "description": "invalid_request, invalid_grant, ..."},
        401: {"model": OAuthError, "description": "invalid_client"},
        429: {
            "model": OAuthError,
            "description": "slow_down: too many failed sign-ins for this account or from this"
            " address; see Retry-After (credentials are not checked meanwhile)",
        },
    },
)
def token(
    ctx: Context,
    request: Request,
    grant_type: Annotated[str, Form(examples=["password", "client_credentials"])],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form(examples=["data:read verify"])] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    """A bearer token for a person (password) or a platform client (client_credentials)."""
    source = source_address(request)
    if grant_type == "password":
        if not username or password is None:
            return _oauth_error("invalid_request", "username and password are required")
        try:
            user = ctx.users.sign_in(username, password, source)
        except SignInThrottled as refusal:
            return _throttled(refusal)
        if user is None:
            return _oauth_error("invalid_grant", "wrong username or password, or user disabled")
        subject, allowed, acting_client = user.username, ROLE_SCOPES[user.role], None
        version = user.token_version
    elif grant_type == "client_credentials":
        basic = _basic_credentials(authorization)
        credentials = basic or (client_id, client_secret)
        given_id, secret = credentials
        if not given_id or secret is None:
            return _oauth_error("invalid_client", "client credentials are required", 401)
        try:
            found = ctx.users.sign_ins.check(
                "client:" + given_id[:100], source, lambda: _client_owner(ctx, given_id, secret)
            )
        except SignInThrottled as refusal:
            return _throttled(refusal)
        if found is None:
            return _oauth_error("invalid_client", "unknown client, wrong secret or disabled", 401)
        client, owner = found
        subject, acting_client = owner.username, client.client_id
        allowed = client.scopes & ROLE_SCOPES[owner.role]
        version = client.token_version
    else:
        return _oauth_error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    granted = _requested(scope, allowed)
    if granted is None:
        return _oauth_error("invalid_scope", f"scope may only name: {' '.join(sorted(allowed))}")
    answer = TokenAnswer(
        access_token=ctx.tokens.issue(subject, granted, acting_client, version),
        expires_in=ctx.tokens.ttl_seconds,
        scope=" ".join(sorted(granted)),
    )
    return JSONResponse(answer.model_dump(), headers={"Cache-Control": "no-store"})
