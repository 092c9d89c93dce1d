"""uvicorn serving an ASGI app (the API, the chain's JSON-RPC) inside the node's lifecycle."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn


class HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the node decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(app: Any, host: str, port: int, tls: tuple[Path, Path] | None) -> HttpServer:
    cert, key = tls if tls else (None, None)
    return HttpServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_level="warning",
            access_log=False,
            ssl_certfile=cert,
            ssl_keyfile=key,
            timeout_graceful_shutdown=5,  # idle keep-alive clients must not delay a stop
        )
    )
