"""Errors as pages: the same error, its status and its safe message, in the page language."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.pages.base import render, session_user
from api.pages.labels import N_
from dangan.errors import DanganError

__all__ = ["error_page"]

# The page's heading per status, in English; translated by the catalogs.
_TITLES = {
    400: N_("Bad request"),
    401: N_("Sign in first"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("Not possible now"),
    413: N_("Too large"),
    415: N_("Not a scan"),
    422: N_("Invalid input"),
    429: N_("Too many attempts"),
    503: N_("Unavailable"),
}


def error_page(request: Request, exc: DanganError) -> HTMLResponse:
    """The error page for ``exc``: its status, a heading, and its message as it is safe to show.

    A record the user may not see answers the same page as one that does not exist."""
    title = _TITLES.get(exc.http_status, N_("Something went wrong"))
    return render(
        request,
        "error.html",
        {"title": title, "message": exc.message, "code": exc.code},
        user=session_user(request),
        status_code=exc.http_status,
    )
