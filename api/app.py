"""The FastAPI application: JSON API under ``/api/v1`` and, later, the web pages.

Built by :func:`create_app` from a :class:`~api.services.Runtime`; routes stay thin and call
``api.services`` or the catalog. Errors are rendered by the handler below from the error's own
code and status (``api/errors.py``), so no route translates exceptions itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.errors import error_body
from api.services import Runtime
from dangan import __version__
from dangan.errors import DanganError

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(rt: Runtime, *, with_workers: bool = False) -> FastAPI:
    """The application. ``with_workers`` runs the job workers beside it (the embedded default:
    one process to start, nothing else to supervise)."""

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
        docs_url="/docs",
    )
    app.state.runtime = rt

    @app.exception_handler(DanganError)
    async def _dangan_error(request: Request, exc: DanganError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error(
                "request failed",
                exc_info=exc if type(exc) is DanganError else None,
                extra={"event": "request_error", "code": exc.code},
            )
        return JSONResponse(error_body(exc), status_code=exc.http_status)

    @app.get("/api/v1/health", tags=["operations"])
    def health() -> dict[str, Any]:
        """Liveness and the catalog's schema revision; no authentication, no content."""
        db = rt.require_initialised()
        return {"status": "ok", "version": __version__, "schema": db.current_revision()}

    return app
