"""Content negotiation of the reading endpoints: `Accept: application/ld+json` answers
JSON-LD on SAREF/SARGON (`domain/semantic.py`); anything else the plain JSON."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from platone_bal.domain.semantic import document
from platone_bal.ports import StoredReading
from platone_bal.services.export import measurement_of

LD_JSON = "application/ld+json"


def wants_linked_data(request: Request) -> bool:
    """Whether the caller asked for JSON-LD (a media range of it with q > 0)."""
    for item in request.headers.get("accept", "").split(","):
        media, *parameters = (part.strip() for part in item.split(";"))
        if media.lower() != LD_JSON:
            continue
        q = next((p[2:] for p in parameters if p.lower().startswith("q=")), "1")
        try:
            if float(q) > 0:
                return True
        except ValueError:
            continue
    return False


def reading_node(request: Request, reading: StoredReading) -> dict[str, Any]:
    return measurement_of(reading, str(request.url_for("reading_proof", reading_id=reading.id)))


def linked_data(
    request: Request,
    readings: list[StoredReading],
    next_cursor: str | None = None,
    archived_days: list[str] | None = None,
) -> JSONResponse:
    """The readings as one JSON-LD document; the next page in a `Link: <...>; rel=next`
    header, and the archived days the query covers in `BAL-Archived-Days`, as headers
    (the document holds measurements only)."""
    graph = [reading_node(request, reading) for reading in readings]
    response = JSONResponse(document(graph), media_type=LD_JSON)
    if next_cursor is not None:
        url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'
    if archived_days:
        response.headers["BAL-Archived-Days"] = ", ".join(archived_days)
    return response
