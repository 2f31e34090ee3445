"""Measure how well a page was digitized (DA/T 31-2017), and judge it against given rules.

:func:`measure_page` looks at one page of an upload as it was scanned: its resolution as the
file declares it (PNG ``pHYs``, JPEG JFIF/EXIF, TIFF tags; for a PDF page, the pixel size of
its largest image against the size it is drawn at), its physical size, its colour mode and how
much ink it carries. :func:`assess` turns those figures, the skew measured before deskewing and
the OCR confidence into :class:`Check` results against a :class:`QualityRules`.

Plain figures in, plain figures out: this module knows no record, setting or business type
(the caller decides the rules), writes nothing and logs nothing about the page.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
from PIL import Image

from dangan.errors import InvalidInputError
from ocr.preprocess import normalise_light, shrink, to_gray
from ocr.rasterize import load_page

__all__ = [
    "PAPER_SIZES",
    "Check",
    "ColourMode",
    "PageScan",
    "QualityRules",
    "assess",
    "measure_page",
    "paper_size",
]

_POINTS_PER_INCH = 72.0
_MM_PER_INCH = 25.4

#: Paper an office scans, short side × long side in millimetres (ISO A/B, JIS B, US, 开本).
PAPER_SIZES: tuple[tuple[str, float, float], ...] = (
    ("A5", 148, 210),
    ("B5", 176, 250),
    ("B5 (JIS)", 182, 257),
    ("16K", 195, 270),
    ("A4", 210, 297),
    ("letter", 215.9, 279.4),
    ("legal", 215.9, 355.6),
    ("B4", 250, 353),
    ("B4 (JIS)", 257, 364),
    ("8K", 270, 390),
    ("A3", 297, 420),
)

#: A dark pixel, after the light is evened out (0..255).
_INK_LEVEL = 128
#: The side the ink is counted at: fast, and fine enough for a blank page's few specks.
_INK_SIDE = 1600
#: A pixel is coloured when its channels differ by more than this (0..255) ...
_CHROMA = 40
#: ... and a page is scanned in colour when more than this share of its pixels is.
_COLOUR_SHARE = 0.0005


class ColourMode(StrEnum):
    colour = "colour"
    grey = "grey"
    bilevel = "bilevel"


@dataclass(frozen=True)
class PageScan:
    """What a page's scan is, as measured.

    :ivar dpi: the resolution the file declares (the lower of its two axes), or ``None`` when
        it declares none (a born-digital PDF page, an image without resolution tags).
    :ivar width_in: the page's physical width in inches (image: pixels ÷ dpi; PDF: the page
        box), or ``None`` when it cannot be known.
    :ivar height_in: likewise its height.
    :ivar colour: colour, grey or bilevel (black and white).
    :ivar ink: the share of the page (0..1) that is dark after the light is evened out.
    """

    dpi: float | None
    width_in: float | None
    height_in: float | None
    colour: ColourMode
    ink: float


@dataclass(frozen=True)
class QualityRules:
    """The thresholds a page is judged by.

    :ivar min_dpi: the lowest acceptable resolution (DA/T 31-2017: 200 dpi).
    :ivar max_skew: the largest acceptable skew before deskewing, in degrees.
    :ivar blank_below: a page with less ink than this share (0..1) is blank.
    :ivar min_confidence: the lowest acceptable OCR confidence (0..1).
    :ivar need_colour: the originals carry seals or red headers: grey and bilevel fail.
    :ivar size_tolerance: how far (a share of each side) a page may be from a paper size.
    """

    min_dpi: float = 200.0
    max_skew: float = 3.0
    blank_below: float = 0.001
    min_confidence: float = 0.7
    need_colour: bool = False
    size_tolerance: float = 0.1


@dataclass(frozen=True)
class Check:
    """One finding on one page.

    :ivar name: ``dpi``, ``size``, ``colour``, ``skew``, ``blank`` or ``confidence``.
    :ivar passed: whether the page meets the rule; ``None`` when it could not be measured.
    :ivar value: the measured figure, where it is a number (dpi, degrees, ink share, confidence).
    :ivar reading: the measured figure in words (``grey``, ``A4``, ``3.2 × 4.1 in``).
    :ivar threshold: the rule, as shown to people (``≥ 200``, ``colour``, ``≤ 3.0``).
    """

    name: str
    passed: bool | None
    value: float | None
    reading: str | None
    threshold: str


def paper_size(width_in: float, height_in: float, tolerance: float = 0.1) -> str | None:
    """The paper size a page of this physical size is, or ``None`` when it is none of
    :data:`PAPER_SIZES` (either orientation) within ``tolerance`` of each side."""
    short, long_ = sorted((width_in * _MM_PER_INCH, height_in * _MM_PER_INCH))
    best: tuple[float, str] | None = None
    for name, p_short, p_long in PAPER_SIZES:
        off = max(abs(short - p_short) / p_short, abs(long_ - p_long) / p_long)
        if off <= tolerance and (best is None or off < best[0]):
            best = (off, name)
    return best[1] if best else None


def measure_page(data: bytes, media_type: str, index: int, *, max_pixels: int) -> PageScan:
    """Measure page ``index`` (0-based) of an upload as it was scanned.

    :param data: the upload's bytes.
    :param media_type: ``application/pdf``, ``image/tiff``, ``image/jpeg`` or ``image/png``.
    :param max_pixels: refuse pages larger than this.
    :raises InvalidInputError: unreadable input, no such page, or too many pixels.
    """
    page = load_page(data, media_type, index, max_pixels=max_pixels)
    ink = _ink_share(page)
    if media_type == "application/pdf":
        dpi, width_in, height_in, bilevel, grey = _pdf_figures(data, index)
        colour = _colour_of(page, bilevel=bilevel, grey=grey)
        return PageScan(dpi, width_in, height_in, colour, ink)
    mode, declared = _image_figures(data, index)
    colour = _colour_of(page, bilevel=mode == "1", grey=mode in ("L", "LA", "I;16", "I", "F"))
    if declared is None:
        return PageScan(None, None, None, colour, ink)
    width, height = page.size
    return PageScan(declared, width / declared, height / declared, colour, ink)


def _image_figures(data: bytes, index: int) -> tuple[str, float | None]:
    """The frame's own mode (before it is made grey or RGB) and its declared resolution."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            image.seek(index)
            dpi = image.info.get("dpi")
            mode = image.mode
    if not dpi:
        return mode, None
    try:
        x, y = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, IndexError):
        return mode, None
    # A missing or "1 dpi" tag (aspect ratio only) declares no resolution.
    if x <= 1 or y <= 1:
        return mode, None
    return mode, round(min(x, y), 1)


def _pdf_figures(
    data: bytes, index: int
) -> tuple[float | None, float | None, float | None, bool, bool]:
    """A PDF page's scan resolution (its largest image's pixels over the size it is drawn at;
    ``None`` without images), its size in inches, and whether that image is bilevel or grey."""
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise InvalidInputError("the PDF cannot be read") from exc
    try:
        page = pdf[index]
        try:
            width_pt, height_pt = page.get_size()
            largest: tuple[float, float, bool, bool] | None = None  # area, dpi, bilevel, grey
            for obj in page.get_objects(filter=[pdfium_raw.FPDF_PAGEOBJ_IMAGE], max_depth=3):
                left, bottom, right, top = obj.get_bounds()
                px_w, px_h = obj.get_px_size()
                drawn_w, drawn_h = (
                    (right - left) / _POINTS_PER_INCH,
                    (top - bottom) / _POINTS_PER_INCH,
                )
                if drawn_w <= 0 or drawn_h <= 0 or px_w <= 0 or px_h <= 0:
                    continue
                area = drawn_w * drawn_h
                if largest is None or area > largest[0]:
                    meta = obj.get_metadata()
                    largest = (
                        area,
                        _image_dpi(px_w, px_h, drawn_w, drawn_h),
                        meta.bits_per_pixel == 1,
                        meta.colorspace == pdfium_raw.FPDF_COLORSPACE_DEVICEGRAY,
                    )
                obj.close()
        finally:
            page.close()
    except pdfium.PdfiumError as exc:
        raise InvalidInputError("the PDF page cannot be read") from exc
    finally:
        pdf.close()
    size = (width_pt / _POINTS_PER_INCH, height_pt / _POINTS_PER_INCH)
    if largest is None:
        return None, *size, False, False
    return round(largest[1], 1), *size, largest[2], largest[3]


def _image_dpi(px_w: int, px_h: int, drawn_w: float, drawn_h: float) -> float:
    """An image's resolution on the page: its pixels over the inches it is drawn across. An
    image drawn turned by 90° spans its width down the page, so the pairing of sides whose two
    resolutions agree best is the one taken."""
    straight = (px_w / drawn_w, px_h / drawn_h)
    turned = (px_w / drawn_h, px_h / drawn_w)
    best = min(straight, turned, key=lambda pair: abs(pair[0] - pair[1]) / max(pair))
    return min(best)


def _colour_of(page: Image.Image, *, bilevel: bool, grey: bool) -> ColourMode:
    if bilevel:
        return ColourMode.bilevel
    if grey or page.mode == "L":
        gray = np.asarray(page.convert("L"))
        counts = np.bincount(gray[::7, ::7].ravel(), minlength=256)
        return ColourMode.bilevel if np.count_nonzero(counts) <= 2 else ColourMode.grey
    small = page.convert("RGB")
    small.thumbnail((800, 800))
    rgb = np.asarray(small, dtype=np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    # A grey scan saved as RGB has (near) equal channels everywhere.
    return (
        ColourMode.colour if float((spread > _CHROMA).mean()) > _COLOUR_SHARE else ColourMode.grey
    )


def _ink_share(page: Image.Image) -> float:
    gray = normalise_light(shrink(to_gray(page), _INK_SIDE))
    return round(float((gray < _INK_LEVEL).mean()), 6)


def _number(value: float) -> str:
    return f"{value:g}"


def assess(
    scan: PageScan, *, skew: float | None, confidence: float | None, rules: QualityRules
) -> tuple[Check, ...]:
    """Judge a measured page against ``rules``.

    :param scan: what :func:`measure_page` found.
    :param skew: the page's skew before deskewing, in degrees (``None``: not measured).
    :param confidence: the OCR confidence, 0..1 (``None``: not read).
    :returns: one :class:`Check` each for ``dpi``, ``size``, ``colour``, ``skew``, ``blank``
        and ``confidence``, in that order.
    """
    checks: list[Check] = []
    if scan.dpi is None:
        checks.append(Check("dpi", None, None, None, f"≥ {_number(rules.min_dpi)}"))
    else:
        checks.append(
            Check("dpi", scan.dpi >= rules.min_dpi, scan.dpi, None, f"≥ {_number(rules.min_dpi)}")
        )
    if scan.width_in is None or scan.height_in is None:
        checks.append(Check("size", None, None, None, "paper size"))
    else:
        paper = paper_size(scan.width_in, scan.height_in, rules.size_tolerance)
        inches = f"{scan.width_in:.1f} × {scan.height_in:.1f} in"
        checks.append(Check("size", paper is not None, None, paper or inches, "paper size"))
    wanted = "colour" if rules.need_colour else "any"
    colour_ok = scan.colour is ColourMode.colour or not rules.need_colour
    checks.append(Check("colour", colour_ok, None, scan.colour.value, wanted))
    max_skew = f"≤ {_number(rules.max_skew)}°"
    if skew is None:
        checks.append(Check("skew", None, None, None, max_skew))
    else:
        angle = round(abs(skew), 2)
        checks.append(Check("skew", angle <= rules.max_skew, angle, None, max_skew))
    blank = scan.ink < rules.blank_below
    checks.append(
        Check(
            "blank",
            not blank,
            scan.ink,
            "blank" if blank else None,
            f"ink ≥ {_number(rules.blank_below)}",
        )
    )
    min_conf = f"≥ {_number(rules.min_confidence)}"
    if confidence is None:
        checks.append(Check("confidence", None, None, None, min_conf))
    else:
        checks.append(
            Check("confidence", confidence >= rules.min_confidence, confidence, None, min_conf)
        )
    return tuple(checks)
