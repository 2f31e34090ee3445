"""Read one page of an upload: text layer or OCR, orientation, deskew, and the page image.

The stages are small functions of their own modules (:mod:`ocr.rasterize`,
:mod:`ocr.preprocess`, :mod:`ocr.orient`, :mod:`ocr.deskew`, :mod:`ocr.engines`); this module
only chains them. Everything stays in memory, and nothing here logs what a page says.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ocr.deskew import estimate_skew, level, rotate_array
from ocr.engines import get_engine
from ocr.engines.base import join_line
from ocr.orient import detect_rotation
from ocr.preprocess import ink_mask, normalise_light, remove_rules, to_gray
from ocr.rasterize import PDF_DPI, load_page, page_count, text_layer
from ocr.result import PageResult, Word

__all__ = ["DEFAULT_MAX_PIXELS", "page_count", "page_image", "read_page", "warm_engine"]

#: The default limit on a page's pixels (about A0 at 300 dpi).
DEFAULT_MAX_PIXELS = 200_000_000


def warm_engine(engine: str, languages: str) -> None:
    """Load ``engine``'s models now, once per process (e.g. in a process pool's initializer).

    :raises InvalidInputError: an unknown engine name.
    :raises DependencyMissingError: the engine or a language pack is not installed.
    """
    get_engine(engine, languages)


def _from_text_layer(data: bytes, index: int) -> PageResult | None:
    runs = text_layer(data, index)
    if runs is None:
        return None
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        width, height = pdf[index].get_size()
    finally:
        pdf.close()
    words = tuple(Word(text=run.text, box=run.box, confidence=1.0) for run in runs)
    return PageResult(
        text="\n".join(join_line([run.text]) for run in runs),
        words=words,
        confidence=1.0,
        rotation=0,
        skew=0.0,
        # The size pdfium renders the page at (it rounds up), as page_image will give it.
        width=math.ceil(width * PDF_DPI / 72),
        height=math.ceil(height * PDF_DPI / 72),
        engine="text_layer",
        needs_review=False,
    )


def read_page(
    data: bytes,
    media_type: str,
    index: int,
    *,
    engine: str = "tesseract",
    languages: str = "chi_sim+eng",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> PageResult:
    """Read page ``index`` (0-based) of an upload.

    A PDF page with a real text layer (born digital) gives that text. Any other page is
    rasterized, cleaned (red seals, uneven light), turned upright, deskewed and read by the
    OCR engine. The same input gives the same result.

    :param data: the upload's bytes.
    :param media_type: ``application/pdf``, ``image/tiff``, ``image/jpeg`` or ``image/png``.
    :param engine: one of :data:`ocr.ENGINES`.
    :param languages: Tesseract language packs joined by ``+``.
    :param max_pixels: refuse pages larger than this.
    :raises InvalidInputError: unreadable input, no such page, too many pixels, unknown engine.
    :raises DependencyMissingError: the engine or a language pack is not installed.
    """
    if media_type == "application/pdf":
        found = _from_text_layer(data, index)
        if found is not None:
            return found
    ocr_engine = get_engine(engine, languages)
    gray = normalise_light(to_gray(load_page(data, media_type, index, max_pixels=max_pixels)))
    rotation = detect_rotation(gray, ocr_engine)
    turned = np.ascontiguousarray(np.rot90(gray, k=-(rotation // 90)))
    skew = estimate_skew(ink_mask(turned))
    page = rotate_array(turned, skew)
    read = ocr_engine.recognize(remove_rules(page))
    height, width = page.shape
    return PageResult(
        text=read.text,
        words=read.words,
        confidence=round(read.confidence, 4),
        rotation=rotation,
        skew=skew,
        width=width,
        height=height,
        engine=ocr_engine.name,
        needs_review=read.confidence < ocr_engine.review_below,
    )


def page_image(
    data: bytes,
    media_type: str,
    index: int,
    *,
    rotation: int,
    skew: float,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Page ``index`` as :func:`read_page` normalised it: turned and deskewed, in colour.

    Pass the ``rotation`` and ``skew`` of its :class:`PageResult`; the words' boxes then fall
    on this image. Its ``info["dpi"]`` is the scan's resolution (PDF pages: rendered at
    :data:`ocr.rasterize.PDF_DPI`), which sizes the access copy's pages.

    :raises InvalidInputError: unreadable input, no such page, or too many pixels.
    """
    scan = load_page(data, media_type, index, max_pixels=max_pixels)
    page = level(scan, rotation, skew)
    page.info["dpi"] = scan.info.get("dpi") or (PDF_DPI, PDF_DPI)
    return page
