"""Every file of the corpus's ``bad/`` uploaded through ``POST /api/v1/records`` gets the answer
its manifest expects (4xx with a message for a refusal, 201 for an acceptance) and the server
keeps serving; all of them in one upload are sorted into stored and refused."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Runtime, initialize
from catalog import Role, create_user
from dangan.config import load_settings
from tests.corpus import CORPUS, scan

BAD = CORPUS / "bad"
PASSWORD = "correct-horse-battery"


def _manifest() -> list[dict[str, str]]:
    path = BAD / "manifest.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


ENTRIES = _manifest()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    scan()  # skips locally, fails in CI, when the corpus is missing
    tmp = tmp_path_factory.mktemp("api-bad")
    temp_area = tmp / "tmp"
    temp_area.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("DANGAN_"):
                mp.delenv(name)
        mp.setattr(tempfile, "tempdir", str(temp_area))
        rt = Runtime(load_settings(data_dir=tmp / "data"))
        try:
            initialize(rt, admin="root", password=PASSWORD)
            with rt.db.write() as session:
                create_user(session, name="clerk1", role=Role.clerk, password=PASSWORD, actor="t")
            with TestClient(create_app(rt)) as c:
                token = c.post(
                    "/api/v1/auth/token", data={"username": "clerk1", "password": PASSWORD}
                ).json()["access_token"]
                c.headers["Authorization"] = f"Bearer {token}"
                yield c, temp_area
        finally:
            rt.close()


def _form(**extra: str) -> dict[str, Any]:
    return {"business_type": "新生入学", "year": "2023", "force": "true", **extra}


@pytest.mark.parametrize("entry", ENTRIES, ids=[d["file"] for d in ENTRIES])
def test_each_bad_file_through_the_api(
    client: tuple[TestClient, Path], entry: dict[str, str]
) -> None:
    c, temp_area = client
    content = (BAD / entry["file"]).read_bytes()
    resp = c.post(
        "/api/v1/records",
        files=[("files", (entry["upload_name"], content, "application/octet-stream"))],
        data=_form(),
    )
    if entry["expect"] == "reject":
        assert 400 <= resp.status_code < 500, resp.text
        body = resp.json()
        assert set(body) == {"error"}
        assert body["error"]["code"] == "invalid_input"
        assert body["error"]["message"]
        assert "Traceback" not in body["error"]["message"]
    else:
        assert resp.status_code == 201, resp.text
        (record,) = resp.json()["records"]
        assert (record["status"], record["stage"]) == ("processing", "queued")
        stored = record["upload_name"]
        assert "/" not in stored
        assert not any(ch in stored for ch in "\x00\x1b\u202e")
        assert len(stored.encode("utf-8")) <= 255
    assert list(temp_area.iterdir()) == []
    assert c.get("/api/v1/health").status_code == 200


def test_all_bad_files_in_one_upload_are_sorted(client: tuple[TestClient, Path]) -> None:
    c, _ = client
    files = [
        ("files", (e["upload_name"], (BAD / e["file"]).read_bytes(), "application/octet-stream"))
        for e in ENTRIES
    ]
    resp = c.post("/api/v1/records", files=files, data=_form())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    accepted = [i for i, e in enumerate(ENTRIES) if e["expect"] == "accept"]
    refused = [i for i, e in enumerate(ENTRIES) if e["expect"] == "reject"]
    assert len(body["records"]) == len(accepted)
    assert [r["index"] for r in body["refused"]] == refused
    assert all(r["error"]["code"] == "invalid_input" for r in body["refused"])


def test_an_upload_without_files_or_fields_is_422_in_the_error_shape(
    client: tuple[TestClient, Path],
) -> None:
    c, _ = client
    resp = c.post("/api/v1/records", data=_form())
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_input"
    assert "files" in resp.json()["error"]["message"]
    content = (BAD / "hostile_name.png").read_bytes()
    resp = c.post("/api/v1/records", files=[("files", ("a.png", content, "image/png"))], data={})
    assert resp.status_code == 422
    assert "business_type" in resp.json()["error"]["message"]
