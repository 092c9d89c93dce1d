"""The web dashboard, served by the node itself on the API's port (no CDN, no
internet): sign-in with a session cookie, role pages, explorer and verifier."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware

from platone_bal.web.pages import router
from platone_bal.web.pages.sign_in import bad_csrf, not_signed_in
from platone_bal.web.session import BadCsrfToken, NotSignedIn

STATIC = Path(__file__).parent / "static"
SESSION_HOURS = 8
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)
"""Scripts only from the node; Plotly sets inline styles on the charts it draws."""
VERIFIER_POLICY = CONTENT_SECURITY_POLICY.replace(
    "connect-src 'self'", "connect-src 'self' http: https:"
)
"""The verifier reads anchors from a JSON-RPC URL its user types, on any host, after
the page has loaded: only that page may connect beyond the node (scripts stay 'self')."""
VERIFIER_PATHS = ("/verify",)
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)
"""/docs starts Swagger UI with an inline script (its assets are local)."""
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect")


def install_dashboard(api: FastAPI, session_key: str | None = None, secure: bool = False) -> None:
    """Mount the dashboard on `api`. `session_key` signs session cookies (a random one
    ends every session at restart); `secure` marks cookies HTTPS-only (TLS serving)."""
    api.add_middleware(GZipMiddleware, minimum_size=2048)
    api.add_middleware(
        SessionMiddleware,
        secret_key=session_key or secrets.token_urlsafe(32),
        session_cookie="bal_session",
        max_age=SESSION_HOURS * 3600,
        same_site="strict",
        https_only=secure,
    )

    @api.middleware("http")
    async def page_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if response.headers.get("content-type", "").startswith("text/html"):
            path = request.url.path
            policy = CONTENT_SECURITY_POLICY
            if path in DOCS_PATHS:
                policy = DOCS_POLICY
            elif path in VERIFIER_PATHS:
                policy = VERIFIER_POLICY
            response.headers["Content-Security-Policy"] = policy
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "same-origin"
            response.headers["Cache-Control"] = "no-store"
        return response

    api.add_exception_handler(NotSignedIn, lambda request, _: not_signed_in(request))
    api.add_exception_handler(BadCsrfToken, lambda request, _: bad_csrf(request))
    api.include_router(router)  # before the mount: /static/vendor/... is a route
    api.mount("/static", StaticFiles(directory=STATIC), name="static")
