"""Script files the pages load that are not in `web/static`: the dashboard works with
no CDN and no internet, so Plotly.js comes from the installed `plotly` package."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

router = APIRouter(include_in_schema=False)

_LONG_CACHE = {"Cache-Control": "public, max-age=86400"}


@router.get("/static/vendor/plotly.min.js")
def plotly_js() -> Response:
    """Plotly.js from the installed `plotly` package: no CDN, no internet."""
    bundled = resources.files("plotly") / "package_data" / "plotly.min.js"
    with resources.as_file(bundled) as path:
        return FileResponse(path, media_type="text/javascript", headers=_LONG_CACHE)
