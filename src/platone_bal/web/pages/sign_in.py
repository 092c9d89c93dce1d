"""Signing in and out, and what a request without a session or with a stale form gets:
the login page, or a page that says the form expired."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from platone_bal.api.deps import source_address
from platone_bal.services.users import SignInThrottled
from platone_bal.web.pages.rendering import HOME, Context, Csrf, back, page
from platone_bal.web.session import check_csrf, sign_in, sign_out, signed_in

router = APIRouter(include_in_schema=False)


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
