"""Errors as RFC 9457 problem documents (application/problem+json)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from platone_bal.ports import StoreUnavailable

PROBLEM_JSON = "application/problem+json"


class ArchivedOnly(Exception):
    """Archived days keep a query from being answered whole: nothing live answers it
    (404), or it asks for a whole dataset, which is never certified in part (409). A
    problem document names the days, never an empty or short answer that looks whole."""

    def __init__(self, days: list[str], *, whole: bool = False) -> None:
        super().__init__(days)
        self.days = days
        self.whole = whole


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, error: HTTPException) -> JSONResponse:
        response = problem(error.status_code, _title(error.status_code), str(error.detail))
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        if error.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(StoreUnavailable)
    async def store_problem(request: Request, error: StoreUnavailable) -> JSONResponse:
        """The store's own passing fault (locked, I/O): ask to come back, not a 500."""
        response = problem(503, "Service Unavailable", "the store is busy; try again")
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(ArchivedOnly)
    async def archived_problem(request: Request, error: ArchivedOnly) -> JSONResponse:
        listed = ", ".join(error.days[:10]) + (" ..." if len(error.days) > 10 else "")
        restore = "an admin restores them with POST /v1/archives/restore"
        if error.whole:
            status, detail = (
                409,
                (
                    f"the readings of {len(error.days)} day(s) of this dataset are archived "
                    f"({listed}); a dataset is answered whole: {restore}, then ask again"
                ),
            )
        else:
            status, detail = (
                404,
                (
                    f"no live reading matches; the readings of {len(error.days)} day(s) it "
                    f"covers are archived ({listed}): {restore}"
                ),
            )
        return problem(
            status, "Archived", detail, type="/problems/archived", archived_days=error.days
        )

    @app.exception_handler(RequestValidationError)
    async def validation_problem(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(item.get("loc", ())), "msg": item.get("msg", "")}
            for item in error.errors()
        ]
        return problem(422, "Unprocessable Content", "the request is not valid", errors=errors)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first
    route's when GET and POST of a path are separate routes)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match is Match.PARTIAL:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
