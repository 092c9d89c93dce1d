"""Request dependencies: the context and the authenticated principal with its scopes.

Routes declare the scope they need (`Security(principal, scopes=[...])`); OpenAPI shows
it. No token or a bad one is 401 (a revoked one too: its version is behind its user's or
client's); a good token without the scope is 403 (RFC 6750).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes
from fastapi.security.utils import get_authorization_scheme_param

from platone_bal.api.context import ApiContext
from platone_bal.domain.users import ROLE_SCOPES, Scope, User
from platone_bal.ports import MAX_ROW_ID

SCOPE_DESCRIPTIONS = {
    Scope.READ.value: "read readings, proofs, certifications and grants one may see",
    Scope.INGEST.value: "post payloads as a producer (POST /v1/ingest)",
    Scope.GRANTS.value: "request, accept, refuse and revoke grants (data:read does not imply it)",
    Scope.VERIFY.value: "check data and proofs, list checkpoints and anchors",
    Scope.ADMIN.value: "manage users and platform clients",
}

oauth2 = OAuth2(
    flows=OAuthFlows(
        password=OAuthFlowPassword(tokenUrl="/oauth/token", scopes=SCOPE_DESCRIPTIONS),
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/oauth/token", scopes=SCOPE_DESCRIPTIONS
        ),
    ),
    scheme_name="OAuth2",
    auto_error=False,
)


def source_address(request: Request) -> str:
    """The peer address failed sign-ins are counted against (no proxy header is
    trusted: anyone could set one)."""
    return request.client.host if request.client else "unknown"


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(context)]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user (also for a client's token) and what it may do now."""

    user: User
    scopes: frozenset[Scope]
    client_id: str | None = None


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def principal(
    required: SecurityScopes, ctx: Context, authorization: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    scheme, token = get_authorization_scheme_param(authorization)
    if not authorization or scheme.lower() != "bearer" or not token:
        raise _unauthorized("a bearer token is required")
    claims = ctx.tokens.claims(token)
    user = ctx.store.get_user(claims.subject) if claims else None
    if claims is None or user is None or user.disabled:
        raise _unauthorized("the token is invalid or expired", "invalid_token")
    scopes = claims.scopes & ROLE_SCOPES[user.role]
    current = user.token_version
    if claims.client_id is not None:
        client = ctx.store.get_client(claims.client_id)
        if client is None or client.disabled or client.username != user.username:
            raise _unauthorized("the token's client is disabled or unknown", "invalid_token")
        scopes &= client.scopes
        current = client.token_version
    if claims.version != current:
        raise _unauthorized("the token was revoked; sign in again", "invalid_token")
    missing = [name for name in required.scopes if Scope(name) not in scopes]
    if missing:
        challenge = f'Bearer error="insufficient_scope", scope="{required.scope_str}"'
        raise HTTPException(
            403,
            f"the token lacks the scope {' '.join(missing)}",
            headers={"WWW-Authenticate": challenge},
        )
    return Principal(user, scopes, claims.client_id)


RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="Row id")]
"""A path id the store can hold."""

Signed = Annotated[Principal, Security(principal)]
"""Any valid token, whatever its scopes."""
Reader = Annotated[Principal, Security(principal, scopes=[Scope.READ.value])]
Ingester = Annotated[Principal, Security(principal, scopes=[Scope.INGEST.value])]
GrantWriter = Annotated[Principal, Security(principal, scopes=[Scope.GRANTS.value])]
"""Grant decisions: request, accept, refuse, revoke (reading grants needs data:read)."""
Verifier = Annotated[Principal, Security(principal, scopes=[Scope.VERIFY.value])]
Admin = Annotated[Principal, Security(principal, scopes=[Scope.ADMIN.value])]
Issuer = Annotated[Principal, Security(principal, scopes=[Scope.SETPOINTS.value])]
