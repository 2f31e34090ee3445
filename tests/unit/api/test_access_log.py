"""uvicorn's access lines never carry a query string (a search's words are students' names)."""

from __future__ import annotations

import logging

import pytest

from api.app import ACCESS_LOG_FILTER, create_app
from api.services import Runtime
from dangan.config import Settings


def test_the_app_strips_query_strings_from_access_lines(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    create_app(Runtime(settings))
    logger = logging.getLogger("uvicorn.access")
    assert ACCESS_LOG_FILTER in logger.filters
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            "/api/v1/search?q=%E4%B8%87%E6%B2%90&type=x",
            "1.1",
            200,
        )
    (line,) = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert line == '127.0.0.1:5000 - "GET /api/v1/search HTTP/1.1" 200'
