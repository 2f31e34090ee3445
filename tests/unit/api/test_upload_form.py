"""The upload form is parsed as it arrives: files go straight into the private directory, the
fields may come before or after them, and every limit holds; through the API the answer is
the one it always was, and nothing is left in the temporary directory."""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.services import Runtime, initialize
from api.services.intake import RefusedUpload, Upload
from api.services.upload_form import FormReceiver, ReceivedForm
from catalog import Role, create_user
from dangan.config import Settings
from dangan.errors import InvalidInputError

BOUNDARY = "dangan-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
FIELDS = ("business_type", "year", "title", "force")
PASSWORD = "correct-horse-battery"


def _png(seed: int = 0, size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.frombytes(
        "L", (size, size), bytes((i * 7 + seed) % 256 for i in range(size * size))
    ).save(out, "PNG")
    return out.getvalue()


Part = tuple[str, str | bytes, str | None]  # (name, value, filename or None for a field)


def _body(parts: list[Part]) -> bytes:
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + (value.encode() if isinstance(value, str) else value) + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def _receive(
    body: bytes, directory: Path, *, piece: int = 65536, max_bytes: int = 10**6, **limits: int
) -> ReceivedForm:
    receiver = FormReceiver(CONTENT_TYPE, directory, fields=FIELDS, max_bytes=max_bytes, **limits)
    try:
        for start in range(0, len(body), piece):
            receiver.feed(body[start : start + piece])
        return receiver.finish()
    finally:
        receiver.close()


@pytest.mark.parametrize("piece", [1, 7, 4096, 10**7], ids=lambda n: f"pieces-of-{n}")
@pytest.mark.parametrize("fields_first", [True, False], ids=["fields-first", "fields-last"])
def test_fields_before_or_after_the_files(tmp_path: Path, piece: int, fields_first: bool) -> None:
    scans = [_png(1), _png(2)]
    files: list[Part] = [("files", s, f"scan{i}.png") for i, s in enumerate(scans)]
    fields: list[Part] = [("business_type", "新生入学", None), ("year", "2023", None)]
    form = _receive(
        _body(fields + files if fields_first else files + fields), tmp_path, piece=piece
    )
    assert form.fields == {"business_type": "新生入学", "year": "2023"}
    assert [f.name for f in form.files] == ["scan0.png", "scan1.png"]
    for received, content in zip(form.files, scans, strict=True):
        upload = received.upload
        assert isinstance(upload, Upload)
        assert upload.path.parent == tmp_path
        assert upload.path.read_bytes() == content
        assert (upload.media_type, upload.size) == ("image/png", len(content))
        assert upload.plaintext_sha256 == hashlib.sha256(content).hexdigest()


def test_many_files_up_to_the_limit(tmp_path: Path) -> None:
    scan = _png()
    files: list[Part] = [("files", scan, f"{i}.png") for i in range(5)]
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    form = _receive(_body(files), first, max_files=5)
    assert len(form.files) == 5
    assert sorted(p.name for p in first.iterdir()) == [f"upload-{i}" for i in range(5)]
    with pytest.raises(InvalidInputError, match="too many files in one upload: at most 4"):
        _receive(_body(files), second, max_files=4)


def test_parts_and_fields_are_bounded(tmp_path: Path) -> None:
    many: list[Part] = [("other", "x", None)] * 11
    with pytest.raises(InvalidInputError, match="too many parts in the form: at most 10"):
        _receive(_body(many), tmp_path, max_parts=10)
    long: list[Part] = [("title", "题" * 2000, None)]
    with pytest.raises(InvalidInputError, match="title: over 4096 bytes"):
        _receive(_body(long), tmp_path)


def test_unknown_fields_and_file_parts_are_dropped(tmp_path: Path) -> None:
    parts: list[Part] = [
        ("secret", "x" * 100_000, None),
        ("attachment", _png(), "a.png"),
        ("year", "2023", None),
    ]
    form = _receive(_body(parts), tmp_path)
    assert form.fields == {"year": "2023"}
    assert form.files == ()
    assert list(tmp_path.iterdir()) == []


def test_a_file_over_the_limit_is_refused_alone_and_leaves_nothing(tmp_path: Path) -> None:
    big, small = b"%PDF-1.7\n" + b"\x00" * 50_000, _png()
    parts: list[Part] = [("files", big, "big.pdf"), ("files", small, "small.png")]
    form = _receive(_body(parts), tmp_path, piece=1000, max_bytes=20_000)
    first, second = form.files
    assert isinstance(first.upload, RefusedUpload)
    assert "too large: over the limit of 20,000 bytes" in first.upload.error.message
    assert isinstance(second.upload, Upload)
    assert [p.name for p in tmp_path.iterdir()] == ["upload-1"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"GIF89a" + b"\x00" * 1000, "GIF"), (b"MZ", "not a scan")],
    ids=["empty", "gif", "short"],
)
def test_a_file_that_is_no_scan_is_refused_on_the_way(
    tmp_path: Path, content: bytes, message: str
) -> None:
    form = _receive(_body([("files", content, "x.png")]), tmp_path)
    (received,) = form.files
    assert isinstance(received.upload, RefusedUpload)
    assert message in received.upload.error.message
    assert list(tmp_path.iterdir()) == []


def test_a_name_with_path_parts_never_reaches_the_disk(tmp_path: Path) -> None:
    directory = tmp_path / "private"
    directory.mkdir()
    names = ["../../evil.png", "/etc/passwd", "C:\\Users\\clerk\\scan.png"]
    form = _receive(_body([("files", _png(), n) for n in names]), directory)
    assert [f.name for f in form.files] == ["../../evil.png", "/etc/passwd", "scan.png"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "private",
        "upload-0",
        "upload-1",
        "upload-2",
    ]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "", "multipart/form-data", "multipart/mixed; boundary=x"],
)
def test_a_body_that_is_no_form_is_refused(tmp_path: Path, content_type: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid request"):
        FormReceiver(content_type, tmp_path, fields=FIELDS, max_bytes=10)


def test_a_malformed_or_cut_body_is_refused(tmp_path: Path) -> None:
    body = _body([("files", _png(), "a.png")])
    with pytest.raises(InvalidInputError, match="ended early"):
        _receive(body[: len(body) // 2], tmp_path)
    with pytest.raises(InvalidInputError, match="malformed"):
        _receive(b"--" + BOUNDARY.encode() + b"\r\nno-colon-here\r\n\r\n", tmp_path / "x")
    with pytest.raises(InvalidInputError, match="has no name"):
        _receive(
            b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data\r\n\r\nx", tmp_path
        )


def test_a_url_encoded_form_has_fields_and_no_files(tmp_path: Path) -> None:
    receiver = FormReceiver(
        "application/x-www-form-urlencoded", tmp_path, fields=FIELDS, max_bytes=10
    )
    receiver.feed(b"business_type=%E6%96%B0%E7%94%9F%E5%85%A5%E5%AD%A6&ye")
    receiver.feed(b"ar=2023&other=1")
    form = receiver.finish()
    assert form.fields == {"business_type": "新生入学", "year": "2023"}
    assert form.files == ()


# --- through the API ---------------------------------------------------------------------


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    temp_area = tmp_path / "tmp"
    temp_area.mkdir()
    rt = Runtime(settings)
    try:
        initialize(rt, admin="root", password=PASSWORD)
        with rt.db.write() as session:
            create_user(session, name="clerk1", role=Role.clerk, password=PASSWORD, actor="t")
        with pytest.MonkeyPatch.context() as mp, TestClient(create_app(rt)) as client:
            mp.setattr(tempfile, "tempdir", str(temp_area))
            token = client.post(
                "/api/v1/auth/token", data={"username": "clerk1", "password": PASSWORD}
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            yield client, temp_area
    finally:
        rt.close()


def test_the_api_takes_fields_after_the_files(api: tuple[TestClient, Path]) -> None:
    client, temp_area = api
    parts: list[Part] = [
        ("files", _png(1), "../a/一.png"),
        ("files", b"GIF89a" + b"\x00" * 600, "two.png"),
        ("files", _png(2), "three.png"),
        ("business_type", "新生入学", None),
        ("year", "2023", None),
        ("title", "", None),
    ]
    resp = client.post(
        "/api/v1/records", content=_body(parts), headers={"Content-Type": CONTENT_TYPE}
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert [r["upload_name"] for r in body["records"]] == ["一.png", "three.png"]
    assert [r["stage"] for r in body["records"]] == ["queued", "queued"]
    ((index, error),) = [(r["index"], r["error"]) for r in body["refused"]]
    assert (index, error["code"]) == (1, "invalid_input")
    assert "GIF" in error["message"]
    assert list(temp_area.iterdir()) == []


def test_the_api_answers_bad_forms_with_422_and_leaves_nothing(
    api: tuple[TestClient, Path],
) -> None:
    client, temp_area = api
    missing = client.post(
        "/api/v1/records",
        content=_body([("files", _png(), "a.png"), ("year", "abc", None)]),
        headers={"Content-Type": CONTENT_TYPE},
    )
    assert missing.status_code == 422
    message = missing.json()["error"]["message"]
    assert message.startswith("invalid request: business_type: Field required; year: ")
    no_files = client.post(
        "/api/v1/records",
        content=_body([("business_type", "新生入学", None), ("year", "2023", None)]),
        headers={"Content-Type": CONTENT_TYPE},
    )
    assert no_files.json() == {
        "error": {"code": "invalid_input", "message": "invalid request: files: Field required"}
    }
    wrong = client.post("/api/v1/records", json={"business_type": "新生入学"})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "invalid_input"
    big = client.post(
        "/api/v1/records",
        content=_body([("files", _png(), "a.png"), ("title", "x" * 5000, None)]),
        headers={"Content-Type": CONTENT_TYPE},
    )
    assert big.status_code == 422
    assert big.json()["error"]["message"] == "invalid request: title: over 4096 bytes"
    assert list(temp_area.iterdir()) == []


def test_the_api_asks_for_a_sign_in_first(api: tuple[TestClient, Path]) -> None:
    client, temp_area = api
    resp = client.post(
        "/api/v1/records",
        content=_body([("files", _png(), "a.png")]),
        headers={"Content-Type": CONTENT_TYPE, "Authorization": "Bearer nope"},
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "not_authenticated"
    assert list(temp_area.iterdir()) == []
