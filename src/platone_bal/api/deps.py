"""Request dependencies: the context and the authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from platone_bal.api.context import ApiContext
from platone_bal.domain.users import Role, User

oauth2 = OAuth2PasswordBearer(tokenUrl="/oauth/token", auto_error=False)

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(context)]


def current_user(ctx: Context, token: Annotated[str | None, Depends(oauth2)]) -> User:
    if token is None:
        raise HTTPException(401, "a bearer token is required", headers=_UNAUTHORIZED)
    username = ctx.tokens.subject(token)
    user = ctx.store.get_user(username) if username else None
    if user is None or user.disabled:
        raise HTTPException(401, "the token is invalid or expired", headers=_UNAUTHORIZED)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def admin(user: CurrentUser) -> User:
    if user.role is not Role.ADMIN:
        raise HTTPException(403, "this needs the admin role")
    return user


Admin = Annotated[User, Depends(admin)]
