"""The FastAPI application of a BAL node."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from platone_bal import __version__
from platone_bal import metrics as node_metrics
from platone_bal.api import (
    audit,
    routes_archives,
    routes_auth,
    routes_certification,
    routes_clients,
    routes_devices,
    routes_grants,
    routes_ingest,
    routes_readings,
    routes_seed,
    routes_series,
    routes_setpoints,
    routes_users,
    routes_verify,
)
from platone_bal.api.body_guard import BodyGuard
from platone_bal.api.context import ApiContext
from platone_bal.api.gateway import GatewayConfig, install_gateway
from platone_bal.api.openapi import install_openapi
from platone_bal.api.problems import install_problem_handlers
from platone_bal.domain.readings import parse_time
from platone_bal.domain.users import Role

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def create_api(
    context: ApiContext,
    gateway: GatewayConfig | None = None,
    session_key: str | None = None,
    secure_cookies: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The API and, on the same port, the dashboard (`session_key` signs its cookies;
    request bodies other than ingest payloads are limited to `max_body_bytes`)."""
    # Swagger UI's assets from the installed fastapi-offline package: /docs works in a
    # closed network too. (No ReDoc: its page fetches a logo from the internet.)
    api = FastAPIOffline(
        redoc_url=None,
        title="Platone Blockchain Access Layer",
        version=__version__,
        description="Collect, certify, store and share grid measurement data.",
    )
    api.state.context = context
    install_problem_handlers(api)
    install_openapi(api)
    # inside the gateway, so that what it refuses is rate limited and logged too
    api.add_middleware(
        BodyGuard,
        max_bytes=max_body_bytes,
        token_valid=lambda token: context.tokens.claims(token) is not None,
    )
    install_gateway(api, context, gateway or GatewayConfig())
    api.include_router(routes_auth.router)
    api.include_router(routes_users.router)
    api.include_router(routes_users.me)
    api.include_router(routes_clients.router)
    api.include_router(routes_devices.router)
    api.include_router(routes_grants.router)
    api.include_router(audit.router)
    api.include_router(routes_ingest.router)
    api.include_router(routes_readings.router)
    api.include_router(routes_archives.router)
    api.include_router(routes_setpoints.router)
    api.include_router(routes_series.router)
    api.include_router(routes_certification.router)
    api.include_router(routes_verify.router)
    api.include_router(routes_seed.router)
    # Imported here: the dashboard builds on this package (access rules, context).
    from platone_bal.web import install_dashboard

    install_dashboard(api, session_key, secure_cookies)

    @api.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the node answers and its store is readable."""
        context.store.has_role(Role.ADMIN)
        return {"status": "ok", "version": __version__}

    @api.get("/metrics", tags=["operations"], response_class=Response)
    def metrics() -> Response:
        """Prometheus text exposition."""
        _observe_log(context)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return api


def _observe_log(context: ApiContext) -> None:
    """Log size, anchor lag and egress position, read from the store at scrape time (so
    every node of a BAL reports them, not only the leader that moves them)."""
    log = context.ingest.log_id
    store = context.store
    size = store.log_size(log)
    anchor = store.latest_anchor(log)
    node_metrics.LOG_SIZE.labels(log).set(size)
    node_metrics.EGRESS_POSITION.labels(log).set(store.egress_position(log))
    node_metrics.ANCHOR_LAG.labels(log).set(size - (anchor.size if anchor else 0))
    if anchor is not None:
        age = datetime.now(UTC) - parse_time(anchor.time)
        node_metrics.ANCHOR_AGE.labels(log).set(age.total_seconds())
