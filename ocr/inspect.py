"""Look inside an upload before it is stored: is it really a scan dangan can read, and within
the limits?

Intake calls :func:`sniff_media_type` on the first bytes, then :func:`inspect_scan` on the
private temporary copy of the whole upload. ``inspect_scan`` really opens the file: a PDF with
pdfium (page count and page sizes; nothing is rendered), an image with Pillow (every frame is
decoded, so a truncated JPEG is caught here and not by OCR later). Every problem becomes an
:class:`InvalidInputError` whose message names the problem and the limit, never the file's
content or name.

Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) is module-global. It is set
once per process by :func:`limit_pillow_pixels` (intake calls it with ``ocr.max_image_pixels``)
and never changed back and forth per call; each call checks the declared size of every frame
against its own ``max_page_pixels`` before decoding it, so concurrent calls need no shared
state. pdfium is not thread-safe: every pdfium call here holds :data:`PDFIUM_LOCK`.

This module never writes a file and never logs anything about the upload.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, UnidentifiedImageError

from dangan.errors import InvalidInputError

__all__ = [
    "ACCEPTED",
    "MEDIA_TYPES",
    "PDFIUM_LOCK",
    "RASTER_DPI",
    "ScanInfo",
    "inspect_scan",
    "limit_pillow_pixels",
    "sniff_media_type",
]

ACCEPTED = "PDF, PNG, JPEG or TIFF"

# The scans an office makes, told apart by their first bytes (never by the file name).
MEDIA_TYPES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)

# What people upload by mistake (or on purpose), so the refusal can say what it got.
_NOT_SCANS: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "an executable program"),
    (b"MZ", "an executable program"),
    (b"\xca\xfe\xba\xbe", "an executable program"),
    (b"\xcf\xfa\xed\xfe", "an executable program"),
    (b"#!", "a script"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document"),
)
_MARKUP = (b"<!doctype html", b"<html", b"<script", b"<svg", b"<?xml", b"<head", b"<body")

# PDF pages are measured at the resolution the pipeline renders them at.
RASTER_DPI = 300
_POINTS_PER_INCH = 72

_READ_PIECE = 1 << 20

PDFIUM_LOCK = threading.Lock()


@dataclass(frozen=True)
class ScanInfo:
    """What inspection found: the media type, the page count and the largest page.

    :ivar largest_page_pixels: width × height of the largest page (PDF pages at
        :data:`RASTER_DPI`).
    """

    media_type: str
    pages: int
    largest_page_pixels: int


def _what_it_is(head: bytes) -> str | None:
    for magic, what in _NOT_SCANS:
        if head.startswith(magic):
            return what
    if head[8:12] == b"WEBP" and head.startswith(b"RIFF"):
        return "a WebP image"
    start = head[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith(_MARKUP):
        return "a web page or markup"
    return None


def sniff_media_type(head: bytes) -> str:
    """The media type of a scan from its first bytes (the name a client gives is ignored).

    :param head: the upload's first bytes (a few KiB are plenty; an empty file gives ``b""``).
    :raises InvalidInputError: the file is empty, or not a PDF, PNG, JPEG or TIFF; the message
        names what it looks like when that is recognisable.
    """
    if not head:
        raise InvalidInputError(f"empty file: dangan takes a scan ({ACCEPTED})")
    for magic, media_type in MEDIA_TYPES:
        if head.startswith(magic):
            return media_type
    what = _what_it_is(head)
    if what is not None:
        raise InvalidInputError(f"this is {what}, not a scan: dangan takes {ACCEPTED}")
    raise InvalidInputError(f"not a scan dangan takes: {ACCEPTED}")


def limit_pillow_pixels(max_pixels: int) -> None:
    """Set Pillow's process-wide decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``).

    Called with the configured limit before any image is opened; assigning the same value
    again is harmless, so every intake may call it. :func:`inspect_scan` checks each frame
    against its own argument as well, so this is a safety net for every other Pillow use.

    :param max_pixels: the largest image, in pixels, Pillow may decode.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels


def inspect_scan(path: Path, media_type: str, *, max_pages: int, max_page_pixels: int) -> ScanInfo:
    """Open a sniffed upload and check that it is readable and within the limits.

    :param path: the upload, whole, in the caller's private temporary directory.
    :param media_type: what :func:`sniff_media_type` said.
    :param max_pages: the most pages a document may have.
    :param max_page_pixels: the most pixels one page may have (PDF pages at 300 dpi).
    :raises InvalidInputError: unreadable, password-protected, truncated, without pages, over
        the page limit, or a page over the pixel limit.
    """
    if media_type == "application/pdf":
        return _inspect_pdf(path, max_pages=max_pages, max_page_pixels=max_page_pixels)
    if media_type in ("image/png", "image/jpeg", "image/tiff"):
        return _inspect_image(
            path, media_type, max_pages=max_pages, max_page_pixels=max_page_pixels
        )
    raise InvalidInputError(f"not a scan dangan takes: {ACCEPTED}")


# --- PDF ---------------------------------------------------------------------------------------


def _inspect_pdf(path: Path, *, max_pages: int, max_page_pixels: int) -> ScanInfo:
    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(path)
        except pdfium.PdfiumError as exc:
            # pdfium's last error is not reset by a load that fails without setting one (a
            # pageless PDF), so a password error left over from another file is possible:
            # the file must also have an encryption dictionary to be called protected.
            password = getattr(exc, "err_code", None) == pdfium.raw.FPDF_ERR_PASSWORD
            if password and _has_encrypt_entry(path):
                raise InvalidInputError(
                    "password-protected PDF cannot be read: upload it without a password"
                ) from None
            raise InvalidInputError(
                "broken PDF: it cannot be opened (damaged or incomplete)"
            ) from None
        try:
            pages = len(pdf)
            if pages == 0:
                raise InvalidInputError("the PDF has no pages")
            _check_page_count(pages, max_pages)
            largest = 0
            for number in range(pages):
                # The page's size from its dictionary alone: loading the page would parse its
                # content and read every image it draws into memory (a 1 GiB scan, whole).
                try:
                    width_pt, height_pt = pdf.get_page_size(number)
                except pdfium.PdfiumError:
                    raise InvalidInputError(
                        f"broken PDF: page {number + 1} cannot be read"
                    ) from None
                pixels = _at_dpi(width_pt) * _at_dpi(height_pt)
                _check_page_pixels(pixels, max_page_pixels, number + 1, pages)
                largest = max(largest, pixels)
        finally:
            pdf.close()
    return ScanInfo("application/pdf", pages, largest)


def _has_encrypt_entry(path: Path) -> bool:
    """Whether the file names an ``/Encrypt`` dictionary (read in pieces, never whole)."""
    tail = b""
    with path.open("rb") as fh:
        while piece := fh.read(_READ_PIECE):
            if b"/Encrypt" in tail + piece:
                return True
            tail = piece[-16:]
    return False


def _at_dpi(points: float) -> int:
    return max(1, round(points * RASTER_DPI / _POINTS_PER_INCH))


# --- images ------------------------------------------------------------------------------------

_PILLOW_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/tiff": "TIFF"}
_NAMES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/tiff": "TIFF"}


def _inspect_image(
    path: Path, media_type: str, *, max_pages: int, max_page_pixels: int
) -> ScanInfo:
    name = _NAMES[media_type]
    try:
        with Image.open(path, formats=[_PILLOW_FORMATS[media_type]]) as image:
            frames = getattr(image, "n_frames", 1) if media_type == "image/tiff" else 1
            # Count first, from the file's directory of frames, so that an over-long TIFF is
            # refused before any page is decoded.
            _check_page_count(frames, max_pages)
            largest = 0
            for number in range(frames):
                image.seek(number)
                width, height = image.size
                _check_page_pixels(width * height, max_page_pixels, number + 1, frames)
                image.load()  # decode it all: a truncated or corrupt page fails here
                largest = max(largest, width * height)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own net (its limit is ocr.max_image_pixels); our check above said it first
        # for every size it could see.
        raise InvalidInputError(
            f"the {name} image has too many pixels (over {max_page_pixels:,}): refused as a "
            "possible decompression bomb"
        ) from None
    except UnidentifiedImageError:
        raise InvalidInputError(f"broken {name}: it cannot be opened") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError):
        # Pillow reports truncated and corrupt data as these; their text may quote the file.
        raise InvalidInputError(f"broken {name}: it is truncated or damaged") from None
    return ScanInfo(media_type, frames, largest)


# --- limits ------------------------------------------------------------------------------------


def _check_page_count(pages: int, max_pages: int) -> None:
    if pages > max_pages:
        raise InvalidInputError(f"too many pages: {pages}, over the limit of {max_pages}")


def _check_page_pixels(pixels: int, max_pixels: int, number: int, pages: int) -> None:
    if pixels > max_pixels:
        where = f"page {number} is" if pages > 1 else "the page is"
        raise InvalidInputError(
            f"{where} too large: {pixels:,} pixels, over the limit of {max_pixels:,} "
            "(refused as a possible decompression bomb)"
        )
