"""One HTTP port in front of the stack's nodes: round robin over those whose /healthz
answers, as a DSO's load balancer (nginx, HAProxy, a Kubernetes Service) does.

Any node answers any request (tokens, sessions and rate limits do not depend on the
node: the secrets are shared through the store; rate limits are per node). A request
that could not reach its node at all (connection refused) goes to the next one, whatever
its method: it never left; an answer that was cut off is not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
HEALTH_EVERY = 1.0


class RoundRobinProxy:
    """An ASGI app forwarding every request to one of `backends` in turn."""

    def __init__(self, backends: Sequence[str]) -> None:
        self.backends = list(backends)
        self.healthy = set(self.backends)
        self._turn = itertools.count()
        self._client: httpx.AsyncClient | None = None
        self._watch: asyncio.Task[None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self._forward(request)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=2.0))
                self._watch = asyncio.create_task(self._watch_health())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._watch is not None:
                    self._watch.cancel()
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _order(self) -> list[str]:
        """The backends to try, starting with the next one's turn; healthy ones first."""
        start = next(self._turn) % len(self.backends)
        turn = self.backends[start:] + self.backends[:start]
        return [b for b in turn if b in self.healthy] + [b for b in turn if b not in self.healthy]

    async def _forward(self, request: Request) -> Response:
        assert self._client is not None
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["x-forwarded-for"] = request.client.host if request.client else ""
        # what the caller accepts, not httpx's default: the body is relayed as it comes
        headers.setdefault("accept-encoding", "identity")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        for backend in self._order():
            outgoing = self._client.build_request(
                request.method, backend + path, headers=headers, content=body
            )
            try:
                answer = await self._client.send(outgoing, stream=True)
            except httpx.ConnectError:
                self.healthy.discard(backend)
                continue
            return StreamingResponse(
                _relay(answer),
                status_code=answer.status_code,
                headers={k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP},
            )
        return Response("no BAL node answers\n", status_code=503, media_type="text/plain")

    async def _watch_health(self) -> None:
        assert self._client is not None
        while True:
            for backend in self.backends:
                try:
                    answer = await self._client.get(f"{backend}/healthz", timeout=2.0)
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                (self.healthy.add if ok else self.healthy.discard)(backend)
            await asyncio.sleep(HEALTH_EVERY)


async def _relay(answer: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in answer.aiter_raw():
            yield chunk
    finally:
        with contextlib.suppress(httpx.HTTPError):
            await answer.aclose()
