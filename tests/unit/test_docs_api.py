"""``docs/api.md`` names every route of the API, as the OpenAPI document lists them."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.app import create_app
from api.services import Runtime
from dangan.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _routes(settings: Settings) -> list[str]:
    schema = create_app(Runtime(settings)).openapi()
    return [f"{m.upper()} {path}" for path, ops in schema["paths"].items() for m in ops]


def test_every_route_is_documented(settings: Settings) -> None:
    text = DOC.read_text(encoding="utf-8")
    routes = _routes(settings)
    assert len(routes) > 15
    for route in routes:
        assert f"`{route}`" in text, f"docs/api.md does not document {route}"


@pytest.mark.parametrize("path", ["/api/v1/records", "/api/v1/search", "/api/v1/auth/token"])
def test_every_route_declares_the_error_shape(settings: Settings, path: str) -> None:
    schema = create_app(Runtime(settings)).openapi()
    for op in schema["paths"][path].values():
        ref = op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorOut")
