"""Upload names: what a client sends is made a safe, short, printable last path part."""

from __future__ import annotations

import json
import unicodedata

import pytest

from api.services.names import MAX_NAME_BYTES, MAX_NAME_CHARS, sanitize_upload_name
from tests.corpus import CORPUS, scan


def _bad_names() -> dict[str, str]:
    manifest = CORPUS / "bad" / "manifest.jsonl"
    if not manifest.is_file():
        return {}
    lines = manifest.read_text(encoding="utf-8").splitlines()
    return {d["file"]: d["upload_name"] for d in map(json.loads, lines) if d}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("scan_0099.jpg", "scan_0099.jpg"),
        ("../../etc/passwd.png", "passwd.png"),
        ("C:\\Users\\li\\Desktop\\扫描.pdf", "扫描.pdf"),
        ("scan\x00\x1b[31m\u202egnp.exe", "scangnp.exe"),
        ("  two   words\t\n.pdf ", "two words.pdf"),
        ("...hidden.png", "hidden.png"),
        ("a\u200bb.png", "ab.png"),
        ("ok.tar.gz", "ok.tar.gz"),
    ],
)
def test_a_name_keeps_its_last_printable_part(given: str, expected: str) -> None:
    assert sanitize_upload_name(given, "image/png") == expected


@pytest.mark.parametrize("given", [None, "", "...", "../", "\x00\x1b", "\u202e", "  "])
def test_nothing_left_becomes_upload_with_the_sniffed_extension(given: str | None) -> None:
    assert sanitize_upload_name(given, "application/pdf") == "upload.pdf"
    assert sanitize_upload_name(given, "image/tiff") == "upload.tif"


def test_a_long_chinese_name_is_shortened_keeping_its_extension() -> None:
    name = "扫描" * 150 + ".png"
    clean = sanitize_upload_name(name, "image/png")
    assert clean.endswith(".png")
    assert clean.startswith("扫描扫描")
    assert len(clean) <= MAX_NAME_CHARS
    assert len(clean.encode("utf-8")) <= MAX_NAME_BYTES


def test_a_long_ascii_name_is_cut_at_the_character_limit() -> None:
    clean = sanitize_upload_name("x" * 300 + ".pdf")
    assert clean == "x" * (MAX_NAME_CHARS - 4) + ".pdf"


def test_an_overlong_extension_is_not_kept_as_one() -> None:
    clean = sanitize_upload_name("a." + "b" * 300)
    assert len(clean) == MAX_NAME_CHARS
    assert clean.startswith("a.bbb")


def test_every_name_in_the_bad_corpus_comes_out_safe() -> None:
    scan("bad/manifest.jsonl")  # skipped locally, failed in CI, when the corpus is missing
    names = _bad_names()
    assert names
    for given in names.values():
        clean = sanitize_upload_name(given, "image/png")
        assert clean
        assert "/" not in clean
        assert "\\" not in clean
        assert not clean.startswith(".")
        assert len(clean) <= MAX_NAME_CHARS
        assert len(clean.encode("utf-8")) <= MAX_NAME_BYTES
        assert all(unicodedata.category(ch) not in ("Cc", "Cf") for ch in clean)
    assert sanitize_upload_name(names["long_name.png"]).endswith(".png")
    assert sanitize_upload_name(names["control_name.png"]) == "scangnp.exe"
    assert sanitize_upload_name(names["hostile_name.png"]) == "passwd.png"
