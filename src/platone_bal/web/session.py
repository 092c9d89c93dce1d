"""Who is signed in to the dashboard, and the CSRF token of each form.

The session lives in a signed cookie (Starlette's SessionMiddleware: HttpOnly,
SameSite=Strict, Secure when the node serves TLS) holding only the username, the user's
token version at sign-in and a CSRF token. The user is read from the store on every
request, so disabling an account ends its sessions at once, and so does a raised token
version: signing out (everywhere: the cookie is signed, not stored, so a copy of it
could not be ended any other way), a password change or reset. Every POST carries the
session's CSRF token in a hidden field and is refused without it.

The browser reads data through the JSON API like any other client: each page carries
a bearer token of the signed-in user with the session's token version (the API itself
never accepts the cookie, so it needs no CSRF defence of its own); it ends with the
session.
"""

from __future__ import annotations

import secrets

from fastapi import Request

from platone_bal.api.context import ApiContext
from platone_bal.domain.users import ROLE_SCOPES, User

SESSION_USER = "user"
SESSION_VERSION = "ver"
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
    """The enabled user of this session, or NotSignedIn (also when the user's token
    version moved past the session's: it was ended)."""
    username = request.session.get(SESSION_USER)
    user = ctx.store.get_user(username) if isinstance(username, str) else None
    version = request.session.get(SESSION_VERSION)
    if user is None or user.disabled or version != user.token_version:
        request.session.pop(SESSION_USER, None)
        request.session.pop(SESSION_VERSION, None)
        raise NotSignedIn
    return user


def sign_in(request: Request, user: User) -> None:
    """A new session for `user`: a fresh CSRF token, so one from before does not carry."""
    request.session.clear()
    request.session[SESSION_USER] = user.username
    request.session[SESSION_VERSION] = user.token_version
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request, ctx: ApiContext) -> None:
    """End this session and, with it, every token and session of its user (a signed
    cookie cannot be ended alone: its copies would stay valid). A session that was
    already ended ends nothing else."""
    try:
        user = signed_in(request, ctx)
    except NotSignedIn:
        user = None
    if user is not None:
        ctx.users.end_sessions(user.username)
    request.session.clear()


def api_token(ctx: ApiContext, user: User) -> str:
    """A bearer token for the page's own API calls, with the user's role's scopes and
    the session's token version, so signing out ends it too."""
    return ctx.tokens.issue(user.username, ROLE_SCOPES[user.role], version=user.token_version)
