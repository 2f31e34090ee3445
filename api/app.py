"""The FastAPI application: JSON API under ``/api/v1`` and the web pages at ``/``.

Built by :func:`create_app` from a :class:`~api.services.Runtime`; routes stay thin and call
``api.services`` or the catalog. Errors are rendered by the handler below from the error's own
code and status (``api/errors.py``), so no route translates exceptions itself; a page gets
the same error as an HTML page (or, not signed in, a way to the sign-in page).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from api import pages, routes
from api.errors import error_body
from api.pages import docs as docs_page
from api.pages.base import LoginRequiredError, login_redirect
from api.pages.errors import error_page
from api.schemas import ErrorOut
from api.security import SecurityHeaders
from api.services import Runtime
from api.services.auth import LoginThrottle
from dangan import __version__
from dangan.errors import (
    DanganError,
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
    TooManyRequestsError,
)

__all__ = ["create_app"]

log = logging.getLogger(__name__)


API_PREFIX = "/api/v1"

# Every route may answer these, in the one error shape.
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": what}
    for status, what in (
        (401, "not signed in, or the token no longer holds"),
        (403, "your role may not do this"),
        (404, "no such thing, or one you may not see (the same answer)"),
        (409, "the archive's state forbids it"),
        (422, "invalid input"),
        (429, "too many failed sign-ins"),
        (503, "a store or the catalog is unreachable"),
    )
}


class _WithoutQueryStrings(logging.Filter):
    """Drop the query string from uvicorn's access lines: a search's words (students' names)
    travel there, and queries are never logged (STYLE.md, "Logging")."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            record.args = (client, method, str(path).split("?", 1)[0], version, status)
        return True


ACCESS_LOG_FILTER = _WithoutQueryStrings()


def _validation_message(exc: RequestValidationError) -> str:
    # Name the fields and what is wrong with them, never the values sent (they may be names).
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def create_app(
    rt: Runtime, *, with_workers: bool = False, login_throttle: LoginThrottle | None = None
) -> FastAPI:
    """The application. ``with_workers`` runs the job workers beside it (the embedded default:
    one process to start, nothing else to supervise).

    :param login_throttle: the sign-in throttle (tests pass a small one); default 5 failures
        per user name and 20 per client address in 5 minutes.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not with_workers:
            yield
            return
        from api.services.worker import run_workers

        stop = threading.Event()
        thread = threading.Thread(
            target=run_workers,
            args=(rt, rt.settings.worker.processes, stop),
            name="dangan-workers",
            daemon=True,
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    app = FastAPI(
        lifespan=lifespan,
        title="dangan",
        version=__version__,
        summary="The records vault of a school student-records office (学籍档案室).",
        openapi_url="/api/v1/openapi.json",
        # /docs is our own page (api/pages/docs.py): vendored Swagger UI, no inline script.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = rt
    access_log = logging.getLogger("uvicorn.access")
    if ACCESS_LOG_FILTER not in access_log.filters:
        access_log.addFilter(ACCESS_LOG_FILTER)
    app.state.login_throttle = login_throttle or LoginThrottle()

    @app.exception_handler(DanganError)
    async def _dangan_error(request: Request, exc: DanganError) -> Response:
        if exc.http_status >= 500:
            log.error(
                "request failed",
                exc_info=exc if type(exc) is DanganError else None,
                extra={"event": "request_error", "code": exc.code},
            )
        if isinstance(exc, LoginRequiredError):
            return login_redirect(exc.next_path)
        if _is_page(request):
            return error_page(request, exc)
        headers = {}
        if isinstance(exc, NotAuthenticatedError):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, TooManyRequestsError):
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse(error_body(exc), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        error = InvalidInputError(_validation_message(exc))
        if _is_page(request):
            return error_page(request, error)
        return JSONResponse(error_body(error), status_code=error.http_status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        # Starlette's own answers (no such route, wrong method) in the one error shape.
        error: DanganError = NotFoundError("no such resource")
        if exc.status_code != 404:
            error = DanganError(str(exc.detail))
            error.code = "http_error"
            error.http_status = exc.status_code
        if _is_page(request):
            return error_page(request, error)
        return JSONResponse(error_body(error), status_code=error.http_status, headers=exc.headers)

    for module in (
        routes.ops,
        routes.auth,
        routes.records,
        routes.changes,
        routes.search,
        routes.jobs,
        routes.stats,
        routes.users,
        routes.audit,
        routes.disposition,
        routes.checks,
        routes.sampling,
        routes.reviews,
        routes.breakglass,
        routes.incidents,
    ):
        app.include_router(module.router, prefix=API_PREFIX, responses=_ERRORS)
    for router in pages.routers():
        app.include_router(router)
    app.include_router(docs_page.router)
    app.mount("/static", StaticFiles(packages=[("api", "static")]), name="static")
    app.add_middleware(SecurityHeaders)
    return app


def _is_page(request: Request) -> bool:
    """Whether the request is for a web page (answered in HTML), not the API or an asset."""
    path = request.url.path
    return not path.startswith((API_PREFIX + "/", "/static/", "/docs"))
