"""What the field trials' API gateway did, in the app: access logs, per-client rate
limits, request metrics, CORS, and caching headers for immutable resources.

The caller of a request is the client or user its bearer token names (checked by
signature only, cheaply), else its IP address: each gets its own token bucket.

A request costs one token, and one with a bearer token also one more per started
`unit_bytes` of its answer past the first: counting requests alone never engaged for
heavy reads (a page of 1,000 readings is about 400 kB; one token pulling pages back to
back got some 25 pages/s from a 2-core node, far below 100 requests/s, and held its
CPU). The size is known only once the answer is made, so it is charged afterwards: the
bucket may go into debt (down to minus one burst) and the caller's next requests wait
until it is paid. Anonymous answers (pages, static assets, the OpenAPI document) are
cheap files and cost one each (Plotly.js alone is nearly 5 MB). Buckets are per process.

Access log lines are JSON: who, method, route, status, latency; never a header, a body
or a query string, so no secret can end up in a log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param

from platone_bal import metrics
from platone_bal.api.context import ApiContext
from platone_bal.api.problems import problem

access_log = logging.getLogger("platone_bal.access")

IMMUTABLE = "private, max-age=31536000, immutable"
ANONYMOUS = "ip:"
"""Bucket prefix of callers without a valid bearer token."""


@dataclass(frozen=True)
class GatewayConfig:
    rate: float = 100.0
    """Requests per second each caller may sustain."""
    burst: int = 200
    """Requests a caller may send at once before the rate applies."""
    cors_origins: list[str] = field(default_factory=list)
    """Browser origins allowed to call the API; none by default."""
    unit_bytes: int = 64 * 1024
    """Answer bytes that cost one more request: at the default rate a token may pull
    about 6.5 MB/s (some 16,000 readings/s, a page of 1,000 costs 7) and burst 13 MB
    (the dashboard's charts read at most 10 pages at once), then 429."""
    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds for the buckets (tests inject one)."""


class RateLimiter:
    """Token buckets per caller; `take` answers None, or seconds to wait."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        """The caller's tokens now (refilled since its last request, at most a burst)."""
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + max(0.0, now - last) * self.rate)

    def take(self, key: str, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens = self._tokens(key, now)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:  # forget callers whose bucket is full again
                full_after = 2 * self.burst / self.rate  # a bucket in debt refills longer
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
            return None

    def charge(self, key: str, cost: float, now: float | None = None) -> None:
        """Take `cost` more tokens for a request already served (its answer was large).
        The bucket may go below zero, down to minus one burst: the caller then waits
        until the debt is paid, at most about two bursts' worth of time."""
        if cost <= 0:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens = self._tokens(key, now) - cost
            self._buckets[key] = (max(tokens, -float(self.burst)), now)


def answer_cost(response: Response, unit_bytes: int) -> int:
    """Tokens beyond the request's own one that its answer costs: one per started
    `unit_bytes` past the first (an answer whose size is not known costs none)."""
    length = response.headers.get("content-length", "")
    if not length.isdigit():
        return 0
    return max(0, math.ceil(int(length) / unit_bytes) - 1)


def caller(request: Request, ctx: ApiContext) -> str:
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() == "bearer" and token:
        claims = ctx.tokens.claims(token)
        if claims is not None:
            if claims.client_id:
                return f"client:{claims.client_id}"
            return f"user:{claims.subject}"
    return f"{ANONYMOUS}{request.client.host if request.client else 'unknown'}"


def install_gateway(api: FastAPI, ctx: ApiContext, config: GatewayConfig) -> None:
    limiter = RateLimiter(config.rate, config.burst)

    @api.middleware("http")
    async def gateway(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        who = caller(request, ctx)
        wait = limiter.take(who, config.clock())
        if wait is not None:
            metrics.RATE_LIMITED.inc()
            response: Response = problem(429, "Too Many Requests", f"slow down: {who}")
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        else:
            response = await call_next(request)
            if not who.startswith(ANONYMOUS):
                limiter.charge(who, answer_cost(response, config.unit_bytes), config.clock())
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        elapsed = time.perf_counter() - started
        metrics.HTTP_REQUESTS.labels(request.method, template, str(response.status_code)).inc()
        metrics.HTTP_LATENCY.labels(request.method, template).observe(elapsed)
        access_log.info(
            json.dumps(
                {
                    "who": who,
                    "method": request.method,
                    "route": template,
                    "path": request.url.path,
                    "status": response.status_code,
                    "ms": round(elapsed * 1000, 2),
                }
            )
        )
        return response

    if config.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["ETag", "Retry-After", "BAL-Reason"],
        )


def immutable_json(request: Request, body: Any) -> Response:
    """A JSON answer that never changes (e.g. the proof of an anchored reading): strong
    ETag, a year of private caching, and 304 when the client already has it."""
    content = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    etag = '"' + hashlib.sha256(content).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return JSONResponse(body, headers=headers)


def anchored_json(request: Request, body: dict[str, Any]) -> Response:
    """A proof or checkpoint: not to be cached while its `anchor` is null (a later
    request returns the anchored form), immutable once anchored."""
    if body.get("anchor") is None:
        return JSONResponse(body, headers={"Cache-Control": "no-store"})
    return immutable_json(request, body)
