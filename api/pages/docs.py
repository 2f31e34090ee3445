"""The interactive API documentation at ``/docs``: the vendored Swagger UI
(``api/static/vendor/swagger-ui``) reading ``/api/v1/openapi.json``.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN and starts it with an inline script;
this one loads everything from ``/static`` and starts it from ``api/static/docs.js``, so it
works offline and under the strict Content-Security-Policy (``api/security.py``).
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

__all__ = ["DOCS_HTML", "router"]

router = APIRouter(include_in_schema=False)

_VENDOR: Final = "/static/vendor/swagger-ui"

DOCS_HTML: Final = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dangan API</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{_VENDOR}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{_VENDOR}/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""


@router.get("/docs", response_class=HTMLResponse)
def docs_page() -> HTMLResponse:
    return HTMLResponse(DOCS_HTML)
