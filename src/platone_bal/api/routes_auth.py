"""POST /oauth/token: the OAuth2 token endpoint (RFC 6749 §4.3, password grant)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from platone_bal.api.deps import Context

router = APIRouter(tags=["auth"])


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (OAuth2 token type, not a secret)
    expires_in: int


def _oauth_error(error: str, description: str) -> JSONResponse:
    """Token endpoint errors use RFC 6749 §5.2 bodies, not problem documents."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=400,
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/oauth/token",
    response_model=TokenAnswer,
    responses={400: {"description": "RFC 6749 error: invalid_grant, unsupported_grant_type"}},
)
def token(
    ctx: Context,
    grant_type: Annotated[str, Form()],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    """Exchange a username and password for a bearer token."""
    if grant_type != "password":
        return _oauth_error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    if not username or password is None:
        return _oauth_error("invalid_request", "username and password are required")
    user = ctx.users.authenticate(username, password)
    if user is None:
        return _oauth_error("invalid_grant", "wrong username or password, or user disabled")
    answer = TokenAnswer(
        access_token=ctx.tokens.issue(user.username), expires_in=ctx.tokens.ttl_seconds
    )
    return JSONResponse(answer.model_dump(), headers={"Cache-Control": "no-store"})
