"""The access copy: a PDF of the page images with an invisible, searchable text layer.

Each page is the normalised page image (JPEG) sized by its resolution, with every recognised
word drawn in text render mode 3 (invisible) over its box, so a viewer can find and select
the text. Chinese text uses the Adobe CID font ``STSong-Light``, which PDF viewers supply
themselves, so no font is embedded. Built in memory; the caller owns ``out``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import BinaryIO

from PIL import Image
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from ocr.result import PageResult

__all__ = ["searchable_pdf"]

_FONT = "STSong-Light"
#: Resolution assumed for a page image that does not say its own.
_DEFAULT_DPI = 300.0
_JPEG_QUALITY = 80


def _font() -> str:
    if _FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(_FONT))
    return _FONT


def _dpi(image: Image.Image) -> float:
    dpi = image.info.get("dpi")
    try:
        value = float(dpi[0]) if dpi else _DEFAULT_DPI
    except (TypeError, ValueError, IndexError):
        value = _DEFAULT_DPI
    return value if value >= 50 else _DEFAULT_DPI


def _jpeg(image: Image.Image) -> io.BytesIO:
    buffer = io.BytesIO()
    image.convert("L" if image.mode in ("1", "L") else "RGB").save(
        buffer, format="JPEG", quality=_JPEG_QUALITY, optimize=True
    )
    buffer.seek(0)
    return buffer


def searchable_pdf(pages: Iterable[tuple[Image.Image, PageResult]], out: BinaryIO) -> None:
    """Write a PDF with one page per image and each result's words as invisible text.

    :param pages: page images (as :func:`ocr.page_image` gives them, their ``dpi`` info
        setting the printed size) with the :class:`PageResult` read from them.
    :param out: a binary stream the PDF is written to; not closed.
    """
    font = _font()
    pdf = canvas.Canvas(out, pageCompression=1)
    pdf.setTitle("")
    pdf.setAuthor("")
    pdf.setCreator("dangan")
    for image, result in pages:
        dpi = _dpi(image)
        points = 72.0 / dpi
        page_width, page_height = image.width * points, image.height * points
        pdf.setPageSize((page_width, page_height))
        pdf.drawImage(ImageReader(_jpeg(image)), 0, 0, page_width, page_height)
        # Boxes are in the result's pixel grid; follow the image if it was scaled.
        scale_x = image.width / max(1, result.width) * points
        scale_y = image.height / max(1, result.height) * points
        for word in result.words:
            x0, y0, x1, y1 = word.box
            box_width, box_height = (x1 - x0) * scale_x, (y1 - y0) * scale_y
            if box_width <= 0 or box_height <= 0:
                continue
            size = max(1.0, box_height * 0.85)
            natural = pdfmetrics.stringWidth(word.text, font, size)
            text = pdf.beginText()
            text.setTextRenderMode(3)
            text.setFont(font, size)
            if natural > 0:
                text.setHorizScale(100.0 * box_width / natural)
            # The baseline sits a little above the box's bottom, where descenders end.
            text.setTextOrigin(x0 * scale_x, page_height - y1 * scale_y + box_height * 0.15)
            text.textOut(word.text)
            pdf.drawText(text)
        pdf.showPage()
    pdf.save()
