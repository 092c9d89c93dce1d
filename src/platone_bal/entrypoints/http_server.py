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


def http_server(
    app: Any,
    host: str,
    port: int,
    tls: tuple[Path, Path] | None,
    trusted_proxies: str = "",
) -> HttpServer:
    """`trusted_proxies`: the peers whose X-Forwarded-For (and -Proto) is believed; no
    one's by default, so a caller cannot choose the address its limits count."""
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
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=trusted_proxies or "",
        )
    )
