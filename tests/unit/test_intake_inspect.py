"""Looking inside an upload: sniffing, and opening it for real
(pages, pixels, truncation, passwords) on the hostile files of ``bad/`` and on made ones."""

from __future__ import annotations

import threading
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image

from dangan.errors import InvalidInputError
from ocr.inspect import inspect_scan, limit_pillow_pixels, sniff_media_type
from tests.corpus import CORPUS, scan

BAD = CORPUS / "bad"
LIMITS = {"max_pages": 200, "max_page_pixels": 200_000_000}


def bad(name: str) -> Path:
    """A file of the bad/ corpus (skipped locally, failed in CI, when it is missing)."""
    return scan(f"bad/{name}")


def _sniff(path: Path) -> str:
    return sniff_media_type(path.read_bytes()[:512])


# --- sniffing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("elf.pdf", "an executable program"),
        ("script.pdf", "a script"),
        ("page.png", "a web page"),
        ("zipbomb.tif", "a ZIP archive"),
        ("image.gif", "a GIF image"),
    ],
)
def test_a_non_scan_is_refused_by_what_it_is_not_by_its_name(name: str, what: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        _sniff(bad(name))
    assert what in info.value.message
    assert "PDF, PNG, JPEG or TIFF" in info.value.message


def test_an_empty_file_says_so() -> None:
    with pytest.raises(InvalidInputError, match="empty file"):
        sniff_media_type(b"")


def test_unknown_bytes_name_what_dangan_takes() -> None:
    with pytest.raises(InvalidInputError, match="PDF, PNG, JPEG or TIFF") as info:
        sniff_media_type(b"\x00\x01secret text of a student")
    assert "secret" not in info.value.message  # never echoes content


@pytest.mark.parametrize(
    ("head", "media_type"),
    [
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
    ],
)
def test_the_four_scan_types_are_told_by_their_first_bytes(head: bytes, media_type: str) -> None:
    assert sniff_media_type(head) == media_type


# --- opening for real --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated.jpg", "broken JPEG: it is truncated or damaged"),
        ("bomb.png", "too many pixels"),
        ("broken.pdf", "broken PDF"),
        ("encrypted.pdf", "password-protected PDF cannot be read"),
        ("many_pages.tif", "too many pages: 300, over the limit of 200"),
    ],
)
def test_a_hostile_scan_is_refused_with_its_reason(name: str, message: str) -> None:
    path = bad(name)
    with pytest.raises(InvalidInputError) as info:
        inspect_scan(path, _sniff(path), **LIMITS)
    assert message in info.value.message


def test_a_jpeg_with_a_zip_appended_is_a_jpeg() -> None:
    path = bad("polyglot.jpg")
    info = inspect_scan(path, _sniff(path), **LIMITS)
    assert (info.media_type, info.pages) == ("image/jpeg", 1)
    assert info.largest_page_pixels == 2338 * 1654


def test_the_page_limit_is_the_callers() -> None:
    path = bad("many_pages.tif")
    assert inspect_scan(path, "image/tiff", max_pages=300, max_page_pixels=10**6).pages == 300
    with pytest.raises(InvalidInputError, match="over the limit of 299"):
        inspect_scan(path, "image/tiff", max_pages=299, max_page_pixels=10**6)


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("1", (2000, 1000)).save(path)
    assert inspect_scan(path, "image/png", max_pages=1, max_page_pixels=2_000_000).pages == 1
    with pytest.raises(InvalidInputError, match=r"2,000,000 pixels, over the limit of 1,999,999"):
        inspect_scan(path, "image/png", max_pages=1, max_page_pixels=1_999_999)


def test_a_tiff_page_over_the_pixel_limit_is_named(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    small, large = Image.new("1", (100, 100)), Image.new("1", (3000, 1000))
    small.save(path, save_all=True, append_images=[large], compression="group4")
    with pytest.raises(InvalidInputError, match="page 2 is too large"):
        inspect_scan(path, "image/tiff", max_pages=5, max_page_pixels=2_000_000)


def _pdf(path: Path, pages: list[tuple[float, float]]) -> Path:
    pdf = pdfium.PdfDocument.new()
    for width, height in pages:
        pdf.new_page(width, height)
    pdf.save(path)
    pdf.close()
    return path


def test_a_pdf_is_counted_and_measured_at_300_dpi(tmp_path: Path) -> None:
    a4 = (595.0, 842.0)  # points
    path = _pdf(tmp_path / "a4.pdf", [a4, a4, a4])
    info = inspect_scan(path, "application/pdf", **LIMITS)
    assert info.pages == 3
    assert info.largest_page_pixels == round(595 * 300 / 72) * round(842 * 300 / 72)
    with pytest.raises(InvalidInputError, match="too many pages: 3, over the limit of 2"):
        inspect_scan(path, "application/pdf", max_pages=2, max_page_pixels=10**9)


def test_a_pdf_page_too_large_at_300_dpi_is_refused(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "poster.pdf", [(595.0, 842.0), (14400.0, 14400.0)])
    with pytest.raises(InvalidInputError, match="page 2 is too large"):
        inspect_scan(path, "application/pdf", **LIMITS)


def test_a_pdf_without_pages_is_refused_as_broken(tmp_path: Path) -> None:
    path = _pdf(tmp_path / "none.pdf", [])
    with pytest.raises(InvalidInputError, match="password"):
        inspect_scan(bad("encrypted.pdf"), "application/pdf", **LIMITS)
    # pdfium refuses it without saying why, and still reports the last file's password error
    with pytest.raises(InvalidInputError, match=r"broken PDF|no pages"):
        inspect_scan(path, "application/pdf", **LIMITS)


def test_pillows_own_limit_is_set_deliberately() -> None:
    before = Image.MAX_IMAGE_PIXELS
    try:
        limit_pillow_pixels(123_456_789)
        assert Image.MAX_IMAGE_PIXELS == 123_456_789
    finally:
        Image.MAX_IMAGE_PIXELS = before


def test_concurrent_inspections_each_keep_their_own_limit(tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    Image.new("L", (1000, 1000)).save(path)
    errors: list[BaseException] = []

    def check(limit: int, ok: bool) -> None:
        for _ in range(20):
            try:
                inspect_scan(path, "image/png", max_pages=1, max_page_pixels=limit)
                assert ok
            except InvalidInputError:
                assert not ok
            except BaseException as exc:  # noqa: BLE001 - collected for the main thread
                errors.append(exc)

    threads = [
        threading.Thread(target=check, args=(2_000_000, True)),
        threading.Thread(target=check, args=(999_999, False)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
