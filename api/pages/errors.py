"""Errors as pages: the same error, its status and its safe message, in the page language."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.pages.base import render, session_user
from dangan.errors import DanganError

__all__ = ["error_page"]

# The page's heading per status, in English; translated by the catalogs.
_TITLES = {
    400: "Bad request",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    413: "Too large",
    415: "Not a scan",
    422: "Invalid input",
    429: "Too many attempts",
    503: "Unavailable",
}


def error_page(request: Request, exc: DanganError) -> HTMLResponse:
    """The error page for ``exc``: its status, a heading, and its message as it is safe to show.

    A record the user may not see answers the same page as one that does not exist."""
    title = _TITLES.get(exc.http_status, "Something went wrong")
    return render(
        request,
        "error.html",
        {"title": title, "message": exc.message, "code": exc.code},
        user=session_user(request),
        status_code=exc.http_status,
    )
