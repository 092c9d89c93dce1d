"""What every page shares: the node's context and the form's CSRF field as request
dependencies, rendering with the values every template needs, post/redirect/get with a
notice, and times as people read them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from platone_bal import __version__
from platone_bal.api.context import ApiContext
from platone_bal.domain.readings import parse_time
from platone_bal.domain.users import Role, User
from platone_bal.web.session import api_token, csrf_token

TEMPLATES = Path(__file__).parents[1] / "templates"
templates = Jinja2Templates(directory=TEMPLATES)

HOME = {Role.CONSUMER: "/consumer", Role.PRODUCER: "/producer", Role.ADMIN: "/admin"}
"""Where each role lands after signing in, and where its forms come back to."""


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(context)]
Csrf = Annotated[str, Form(alias="csrf")]


def page(request: Request, ctx: ApiContext, user: User | None, name: str, **data: Any) -> Response:
    """Render `name` with what every page needs: the user, CSRF and API tokens, notices."""
    values = {
        "user": user,
        "csrf": csrf_token(request),
        "api_token": api_token(ctx, user) if user else None,
        "notice": request.query_params.get("notice"),
        "problem": request.query_params.get("problem"),
        "version": __version__,
        **data,
    }
    return templates.TemplateResponse(request, name, values)


def back(path: str, *, notice: str | None = None, problem: str | None = None) -> Response:
    """Post/redirect/get: the page again, with what happened in words."""
    if notice:
        path += f"?notice={quote(notice)}"
    elif problem:
        path += f"?problem={quote(problem)}"
    return RedirectResponse(path, status_code=303)


def when(value: datetime | str | None) -> str:
    """A time as people read it in a control room: UTC, to the second."""
    if value is None:
        return "—"
    moment = parse_time(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["when"] = when
