"""Receiving an upload: streamed once into the private directory, hashed and counted on the
way, stopped as soon as the byte limit is passed or the first bytes show it is no scan."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from api.services.intake import receive_upload
from dangan.errors import InvalidInputError
from vault import CHUNK


class _Endless(io.RawIOBase):
    """A stream of one repeated chunk that counts what was read from it."""

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.served = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = CHUNK if size < 0 else size
        piece = (self.head + b"\x00" * n)[:n] if self.served == 0 else b"\x00" * n
        self.served += len(piece)
        return piece


def test_reading_stops_as_soon_as_the_byte_limit_is_passed(tmp_path: Path) -> None:
    stream = _Endless(b"%PDF-1.7\n")
    with pytest.raises(InvalidInputError, match=r"too large: over the limit of 3,000,000 bytes"):
        receive_upload(stream, tmp_path, max_bytes=3_000_000)  # type: ignore[arg-type]
    assert stream.served <= 3_000_000 + CHUNK


def test_a_refused_type_is_not_read_further(tmp_path: Path) -> None:
    stream = _Endless(b"GIF89a")
    with pytest.raises(InvalidInputError, match="GIF"):
        receive_upload(stream, tmp_path, max_bytes=10**9)  # type: ignore[arg-type]
    assert stream.served == CHUNK


def test_an_upload_is_hashed_and_counted_on_the_way(tmp_path: Path) -> None:
    body = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 9000
    upload = receive_upload(io.BytesIO(body), tmp_path, max_bytes=len(body))
    assert upload.size == len(body)
    assert upload.plaintext_sha256 == hashlib.sha256(body).hexdigest()
    assert upload.media_type == "image/png"
    assert upload.path.read_bytes() == body


class _Trickle(io.RawIOBase):
    """A stream that gives a few bytes per read, as a slow network does."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.at = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        piece = self.body[self.at : self.at + 3]
        self.at += len(piece)
        return piece


def test_short_reads_are_sniffed_on_the_gathered_head(tmp_path: Path) -> None:
    body = b"GIF89a" + b"\x00" * 2000
    with pytest.raises(InvalidInputError, match="GIF"):
        receive_upload(_Trickle(body), tmp_path, max_bytes=10**6)  # type: ignore[arg-type]
    pdf = b"%PDF-1.7\n" + b"x" * 2000
    (tmp_path / "again").mkdir()
    upload = receive_upload(_Trickle(pdf), tmp_path / "again", max_bytes=10**6)  # type: ignore[arg-type]
    assert (upload.media_type, upload.size) == ("application/pdf", len(pdf))
