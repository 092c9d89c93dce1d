"""What the node reads of a request body, decided before it reads a byte.

Without it, FastAPI read and parsed any body in full before a route's dependencies ran:
8 parallel 14 MB bodies to `/v1/verify` without a token (all answered 401) took the
node from 221 MB to 3.18 GB, and a deeply nested JSON body crashed it. So, before any
route runs:

- a body on an API route (`/v1/...`, the seed routes) is read only from a caller whose
  bearer token has a valid signature; anyone else gets 401 and nothing is read;
- no body may exceed `max_bytes` (by its Content-Length, or as it streams in): 413;
- a JSON body (or one without a content type, which FastAPI parses as JSON) may nest at
  most `json_depth.MAX_DEPTH` levels: 400.

`POST /v1/ingest` is left to its route, which authenticates first, reads up to
`BAL_MAX_PAYLOAD_BYTES` and records an oversized payload as a rejection.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from platone_bal.api.problems import problem
from platone_bal.codecs.json_depth import JsonTooDeep, check_depth

API_PREFIXES = ("/v1/", "/scd/", "/bap/", "/api/")
"""Routes that take a bearer token and nothing else."""


class _TooLarge(Exception):
    pass


class BodyGuard:
    """Pure ASGI middleware (so that it sees the body before anything parses it)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        token_valid: Callable[[str], bool] | None = None,
        exempt: frozenset[str] = frozenset({"/v1/ingest"}),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.token_valid = token_valid
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not _has_body(headers):
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(API_PREFIXES) and not self._authenticated(headers):
            answer = problem(401, "Unauthorized", "a valid bearer token is required")
            answer.headers["WWW-Authenticate"] = "Bearer"
            await answer(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        try:
            body = await self._read(receive)
        except _TooLarge:
            await self._too_large(scope, receive, send)
            return
        if _parsed_as_json(headers):
            try:
                check_depth(body)
            except JsonTooDeep as error:
                await problem(400, "Bad Request", str(error))(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)

    def _authenticated(self, headers: Headers) -> bool:
        """True when bodies need no token here, or the caller's has a valid signature."""
        if self.token_valid is None:
            return True
        scheme, token = get_authorization_scheme_param(headers.get("authorization"))
        return scheme.lower() == "bearer" and bool(token) and self.token_valid(token)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request bodies are limited to {self.max_bytes} bytes"
        await problem(413, "Content Too Large", detail)(scope, receive, send)


def _has_body(headers: Headers) -> bool:
    declared = headers.get("content-length")
    if declared is not None:
        return declared.strip() not in ("", "0")
    return "transfer-encoding" in headers


def _parsed_as_json(headers: Headers) -> bool:
    content_type = headers.get("content-type", "").lower()
    return not content_type or "json" in content_type


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, as one message; after it, the original channel (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
