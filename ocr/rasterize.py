"""Turn an upload's bytes into page images, one page at a time, and read PDF text layers.

Supported media types: PDF (rendered with pdfium at :data:`PDF_DPI`), multi-page TIFF, JPEG
and PNG. Everything happens in memory; nothing here writes to disk. Unreadable input, a media
type that does not match the bytes, and images over the pixel limit raise
:class:`dangan.errors.InvalidInputError`, with messages that never name the file.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import pypdfium2 as pdfium
from PIL import Image, ImageOps, UnidentifiedImageError

from dangan.errors import InvalidInputError

__all__ = [
    "MEDIA_TYPES",
    "PDF_DPI",
    "TextRun",
    "load_page",
    "page_count",
    "text_layer",
]

#: Resolution at which PDF pages are rendered for OCR and for the access copy.
PDF_DPI = 300

#: Pillow's format name for each accepted image media type.
_IMAGE_FORMATS = {"image/tiff": "TIFF", "image/jpeg": "JPEG", "image/png": "PNG"}
MEDIA_TYPES = ("application/pdf", *_IMAGE_FORMATS)

#: A PDF page counts as born-digital when its text layer has at least this many characters.
_MIN_TEXT_LAYER_CHARS = 8


@dataclass(frozen=True)
class TextRun:
    """A run of text from a PDF text layer, boxed in pixels of the page rendered at PDF_DPI."""

    text: str
    box: tuple[int, int, int, int]


def _check_media_type(media_type: str) -> None:
    if media_type not in MEDIA_TYPES:
        raise InvalidInputError(f"unsupported media type {media_type!r}")


def _open_pdf(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise InvalidInputError("the PDF cannot be read") from exc


def _open_image(data: bytes, media_type: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; we decide with max_pixels.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InvalidInputError("the image cannot be read") from exc
    if image.format != _IMAGE_FORMATS[media_type]:
        raise InvalidInputError(f"the content is not {media_type}")
    width, height = image.size
    if width * height > max_pixels:
        raise InvalidInputError("the image has more pixels than allowed")
    return image


def page_count(data: bytes, media_type: str) -> int:
    """How many pages an upload has.

    :param data: the upload's bytes.
    :param media_type: ``application/pdf``, ``image/tiff``, ``image/jpeg`` or ``image/png``.
    :raises InvalidInputError: unknown media type, or bytes that are not such a file.
    """
    _check_media_type(media_type)
    if media_type == "application/pdf":
        pdf = _open_pdf(data)
        try:
            count = len(pdf)
        finally:
            pdf.close()
    else:
        image = _open_image(data, media_type, max_pixels=2**62)
        count = int(getattr(image, "n_frames", 1))
    if count < 1:
        raise InvalidInputError("the file has no pages")
    return count


def _check_index(index: int, count: int) -> None:
    if not 0 <= index < count:
        raise InvalidInputError(f"page {index} does not exist (the file has {count})")


def _to_gray_or_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("1", "I;16", "I;16B", "I;16L", "I", "F"):
        return image.convert("L")
    if image.mode in ("LA", "RGBA", "P", "PA"):
        # Transparent areas become white paper rather than black.
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    return image.convert("RGB")


def load_page(data: bytes, media_type: str, index: int, *, max_pixels: int) -> Image.Image:
    """Page ``index`` (0-based) as an ``L`` or ``RGB`` image, as scanned (not yet turned).

    JPEG EXIF orientation is applied; PDF pages are rendered at :data:`PDF_DPI`.

    :raises InvalidInputError: unreadable input, no such page, or more than ``max_pixels``.
    """
    _check_media_type(media_type)
    if media_type == "application/pdf":
        pdf = _open_pdf(data)
        try:
            _check_index(index, len(pdf))
            page = pdf[index]
            width, height = page.get_size()
            scale = PDF_DPI / 72
            if width * scale * height * scale > max_pixels:
                raise InvalidInputError("the page has more pixels than allowed")
            try:
                image = page.render(scale=scale).to_pil()
                image.info["dpi"] = (PDF_DPI, PDF_DPI)
            except pdfium.PdfiumError as exc:
                raise InvalidInputError("the PDF page cannot be rendered") from exc
            finally:
                page.close()
        finally:
            pdf.close()
        converted = _to_gray_or_rgb(image)
        converted.info["dpi"] = (PDF_DPI, PDF_DPI)
        return converted
    image = _open_image(data, media_type, max_pixels)
    _check_index(index, int(getattr(image, "n_frames", 1)))
    try:
        image.seek(index)
        if image.size[0] * image.size[1] > max_pixels:
            raise InvalidInputError("the page has more pixels than allowed")
        image.load()
        frame = ImageOps.exif_transpose(image) if media_type == "image/jpeg" else image.copy()
    except (OSError, EOFError, ValueError) as exc:
        raise InvalidInputError("the image cannot be decoded") from exc
    converted = _to_gray_or_rgb(frame)
    if "dpi" in image.info:
        converted.info["dpi"] = image.info["dpi"]
    return converted


def text_layer(data: bytes, index: int) -> list[TextRun] | None:
    """The text layer of PDF page ``index``, one run per line, or None when it has none.

    A page whose text layer has fewer than a handful of characters counts as a scan, and
    so does a page with a ``/Rotate`` (its text layer's boxes would not match the image).

    :raises InvalidInputError: unreadable PDF or no such page.
    """
    pdf = _open_pdf(data)
    try:
        _check_index(index, len(pdf))
        page = pdf[index]
        textpage = page.get_textpage()
        try:
            if page.get_rotation() % 360:
                # Character boxes are given unrotated; such a page is read as a scan instead.
                return None
            count = textpage.count_chars()
            text = textpage.get_text_range(0, count) if count else ""
            if sum(not ch.isspace() for ch in text) < _MIN_TEXT_LAYER_CHARS:
                return None
            _, page_height = page.get_size()
            return _runs(textpage, count, page_height)
        finally:
            textpage.close()
            page.close()
    except pdfium.PdfiumError as exc:
        raise InvalidInputError("the PDF text layer cannot be read") from exc
    finally:
        pdf.close()


def _runs(textpage: pdfium.PdfTextPage, count: int, page_height: float) -> list[TextRun]:
    scale = PDF_DPI / 72
    runs: list[TextRun] = []
    chars: list[str] = []
    boxes: list[tuple[float, float, float, float]] = []

    def flush() -> None:
        line = " ".join("".join(chars).split())
        if line and boxes:
            left = min(b[0] for b in boxes)
            bottom = min(b[1] for b in boxes)
            right = max(b[2] for b in boxes)
            top = max(b[3] for b in boxes)
            box = (
                round(left * scale),
                round((page_height - top) * scale),
                round(right * scale),
                round((page_height - bottom) * scale),
            )
            runs.append(TextRun(line, box))
        chars.clear()
        boxes.clear()

    for i in range(count):
        char = textpage.get_text_range(i, 1)
        if char in ("\r", "\n"):
            flush()
            continue
        chars.append(char)
        if not char.isspace():
            # Loose boxes span the font's ascent and descent; tight ones can be flat.
            boxes.append(textpage.get_charbox(i, loose=True))
    flush()
    return runs
