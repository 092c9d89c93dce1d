"""Who is signed in to the dashboard, and the CSRF token of each form.

The session lives in a signed cookie (Starlette's SessionMiddleware: HttpOnly,
SameSite=Strict, Secure when the node serves TLS) holding only the username and a
CSRF token. The user is read from the store on every request, so disabling an
account ends its sessions at once. Every POST carries the session's CSRF token in a
hidden field and is refused without it.

The browser reads data through the JSON API like any other client: each page carries
a bearer token of the signed-in user (the API itself never accepts the cookie, so it
needs no CSRF defence of its own).
"""

from __future__ import annotations

import secrets

from fastapi import Request

from platone_bal.api.context import ApiContext
from platone_bal.domain.users import ROLE_SCOPES, User

SESSION_USER = "user"
SESSION_CSRF = "csrf"


class NotSignedIn(Exception):
    """The request has no valid session; the dashboard answers with the login page."""


class BadCsrfToken(Exception):
    """A form came without this session's CSRF token (forged, or from an old page)."""


def csrf_token(request: Request) -> str:
    """This session's CSRF token, made on first use."""
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


def check_csrf(request: Request, given: str | None) -> None:
    expected = request.session.get(SESSION_CSRF)
    if not isinstance(expected, str) or not given or not secrets.compare_digest(expected, given):
        raise BadCsrfToken


def signed_in(request: Request, ctx: ApiContext) -> User:
    """The enabled user of this session, or NotSignedIn."""
    username = request.session.get(SESSION_USER)
    user = ctx.store.get_user(username) if isinstance(username, str) else None
    if user is None or user.disabled:
        request.session.pop(SESSION_USER, None)
        raise NotSignedIn
    return user


def sign_in(request: Request, user: User) -> None:
    """A new session for `user`: a fresh CSRF token, so one from before does not carry."""
    request.session.clear()
    request.session[SESSION_USER] = user.username
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    request.session.clear()


def api_token(ctx: ApiContext, user: User) -> str:
    """A bearer token for the page's own API calls, with the user's role's scopes."""
    return ctx.tokens.issue(user.username, ROLE_SCOPES[user.role])
