"""The digitization quality checks (docs/quality.md) on generated pages whose resolution, size,
colour and ink are known: what the file declares is what is measured, and each rule passes
clean pages and flags the others with their figure."""

from __future__ import annotations

import io
import random

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw

from api.services.pipeline import quality_checks
from catalog import Verdict
from dangan.config import QualitySettings
from ocr import ColourMode, PageResult, PageScan, QualityRules, assess, measure_page
from ocr.quality import Check, paper_size

MAX_PIXELS = 200_000_000
A4_IN = (8.27, 11.69)


def _page(
    dpi: int,
    *,
    mode: str = "L",
    size_in: tuple[float, float] = A4_IN,
    ink: bool = True,
    seal: bool = False,
    noise: int = 0,
) -> Image.Image:
    width, height = round(size_in[0] * dpi), round(size_in[1] * dpi)
    page = Image.new("RGB", (width, height), (250, 250, 248))
    draw = ImageDraw.Draw(page)
    if ink:
        step = max(4, dpi // 8)
        for row in range(6):
            top = dpi + row * step * 3
            for col in range(30):
                left = dpi + col * step
                draw.rectangle((left, top, left + step // 2, top + step), fill=(20, 20, 20))
    if seal:
        centre = (width * 2 // 3, height * 2 // 3)
        radius = dpi // 2
        box = (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius)
        draw.ellipse(box, outline=(210, 30, 30), width=max(3, dpi // 30))
    if noise:
        rng = random.Random(7)  # noqa: S311 - seeded noise for a test page, not a secret
        pixels = page.load()
        assert pixels is not None
        for _ in range(width * height // 400):
            x, y = rng.randrange(width), rng.randrange(height)
            shade = rng.randrange(noise)  # dark specks of dust and sensor noise
            pixels[x, y] = (shade, shade, shade)
    if mode == "1":
        return page.convert("L").point(lambda v: 255 if v > 128 else 0).convert("1")
    return page.convert(mode)


def _png(image: Image.Image, dpi: float | None) -> bytes:
    out = io.BytesIO()
    if dpi is None:
        image.save(out, "PNG")
    else:
        image.save(out, "PNG", dpi=(dpi, dpi))
    return out.getvalue()


def _checks(scan: PageScan) -> dict[str, Check]:
    return {c.name: c for c in assess(scan, skew=0.4, confidence=0.95, rules=QualityRules())}


def test_a_150_dpi_scan_fails_the_resolution_check_with_its_figure() -> None:
    scan = measure_page(_png(_page(150), 150), "image/png", 0, max_pixels=MAX_PIXELS)
    assert scan.dpi == pytest.approx(150, abs=0.5)
    dpi = _checks(scan)["dpi"]
    assert dpi.passed is False
    assert dpi.value == pytest.approx(150, abs=0.5)
    assert dpi.threshold == "≥ 200"


@pytest.mark.parametrize("dpi", [200, 300])
def test_clean_200_and_300_dpi_a4_scans_pass_every_check(dpi: int) -> None:
    scan = measure_page(_png(_page(dpi), dpi), "image/png", 0, max_pixels=MAX_PIXELS)
    assert scan.dpi == pytest.approx(dpi, abs=0.5)
    assert paper_size(scan.width_in or 0, scan.height_in or 0) == "A4"
    checks = assess(scan, skew=-1.2, confidence=0.93, rules=QualityRules())
    assert [(c.name, c.passed) for c in checks] == [
        ("dpi", True),
        ("size", True),
        ("colour", True),
        ("skew", True),
        ("blank", True),
        ("confidence", True),
    ]


def test_jpeg_and_tiff_declare_their_resolution_too() -> None:
    page = _page(300, mode="RGB", seal=True)
    jpeg, tiff = io.BytesIO(), io.BytesIO()
    page.save(jpeg, "JPEG", dpi=(300, 300), quality=80)
    page.convert("1").save(tiff, "TIFF", dpi=(240, 240), compression="group4")
    assert measure_page(jpeg.getvalue(), "image/jpeg", 0, max_pixels=MAX_PIXELS).dpi == 300
    from_tiff = measure_page(tiff.getvalue(), "image/tiff", 0, max_pixels=MAX_PIXELS)
    assert from_tiff.dpi == 240
    assert from_tiff.colour is ColourMode.bilevel


def test_an_image_without_a_resolution_tag_is_not_measured() -> None:
    scan = measure_page(_png(_page(200), None), "image/png", 0, max_pixels=MAX_PIXELS)
    assert scan.dpi is None
    checks = _checks(scan)
    assert checks["dpi"].passed is None
    assert checks["size"].passed is None


def test_300_dpi_declared_on_a_tiny_image_is_not_a_plausible_page() -> None:
    tiny = _page(300, size_in=(1.5, 1.0), ink=False)
    scan = measure_page(_png(tiny, 300), "image/png", 0, max_pixels=MAX_PIXELS)
    assert scan.dpi == pytest.approx(300, abs=0.5)
    size = _checks(scan)["size"]
    assert size.passed is False
    assert size.reading == "1.5 × 1.0 in"


def test_landscape_a3_and_letter_are_plausible_and_a_strip_is_not() -> None:
    assert paper_size(16.54, 11.69) == "A3"
    assert paper_size(8.5, 11.0) == "letter"
    assert paper_size(8.27, 30.0) is None


@pytest.mark.parametrize(
    ("mode", "seal", "colour"),
    [
        ("RGB", True, ColourMode.colour),
        ("L", True, ColourMode.grey),
        ("1", True, ColourMode.bilevel),
    ],
)
def test_the_colour_mode_is_measured(mode: str, seal: bool, colour: ColourMode) -> None:
    image = _page(200, mode=mode, seal=seal)
    scan = measure_page(_png(image, 200), "image/png", 0, max_pixels=MAX_PIXELS)
    assert scan.colour is colour


def test_a_grey_scan_saved_as_rgb_is_grey() -> None:
    image = _page(200, mode="L").convert("RGB")
    scan = measure_page(_png(image, 200), "image/png", 0, max_pixels=MAX_PIXELS)
    assert scan.colour is ColourMode.grey


def _result(skew: float = 0.5, confidence: float = 0.95) -> PageResult:
    return PageResult(
        text="",
        words=(),
        confidence=confidence,
        rotation=0,
        skew=skew,
        width=1654,
        height=2339,
        engine="tesseract",
        needs_review=False,
    )


@pytest.mark.parametrize("mode", ["L", "1"])
def test_a_grey_or_bilevel_scan_of_a_seal_type_is_flagged(mode: str) -> None:
    scan = measure_page(
        _png(_page(200, mode=mode, seal=True), 200), "image/png", 0, max_pixels=MAX_PIXELS
    )
    verdicts = {c.name: c for c in quality_checks(QualitySettings(), "处分决定", scan, _result())}
    assert verdicts["colour"].verdict is Verdict.warn
    assert verdicts["colour"].reading == ("grey" if mode == "L" else "bilevel")
    assert verdicts["colour"].threshold == "colour"
    # The same scan of a type without seals passes.
    plain = {c.name: c for c in quality_checks(QualitySettings(), "成绩单", scan, _result())}
    assert plain["colour"].verdict is Verdict.passed


def test_a_colour_scan_of_a_seal_type_passes() -> None:
    image = _page(200, mode="RGB", seal=True)
    scan = measure_page(_png(image, 200), "image/png", 0, max_pixels=MAX_PIXELS)
    verdicts = {c.name: c for c in quality_checks(QualitySettings(), "合同", scan, _result())}
    assert verdicts["colour"].verdict is Verdict.passed


def test_a_failed_check_fails_only_where_the_type_blocks() -> None:
    scan = measure_page(_png(_page(150), 150), "image/png", 0, max_pixels=MAX_PIXELS)
    blocking = QualitySettings(block_types=["转学"])
    warned = {c.name: c.verdict for c in quality_checks(blocking, "成绩单", scan, _result(4.2))}
    failed = {c.name: c.verdict for c in quality_checks(blocking, "转学", scan, _result(4.2))}
    assert (warned["dpi"], warned["skew"]) == (Verdict.warn, Verdict.warn)
    assert (failed["dpi"], failed["skew"], failed["colour"]) == (
        Verdict.fail,
        Verdict.fail,
        Verdict.fail,  # 转学 is a seal type by default, and this scan is grey
    )
    assert failed["confidence"] is Verdict.passed


def test_skew_above_three_degrees_is_flagged_with_its_angle() -> None:
    scan = measure_page(_png(_page(300), 300), "image/png", 0, max_pixels=MAX_PIXELS)
    skew = {c.name: c for c in assess(scan, skew=-3.4, confidence=0.9, rules=QualityRules())}
    assert skew["skew"].passed is False
    assert skew["skew"].value == pytest.approx(3.4)
    fine = {c.name: c for c in assess(scan, skew=2.9, confidence=0.9, rules=QualityRules())}
    assert fine["skew"].passed is True


def test_low_confidence_is_flagged() -> None:
    scan = measure_page(_png(_page(300), 300), "image/png", 0, max_pixels=MAX_PIXELS)
    checks = {c.name: c for c in assess(scan, skew=0, confidence=0.42, rules=QualityRules())}
    assert checks["confidence"].passed is False
    assert checks["confidence"].value == pytest.approx(0.42)


def test_a_blank_page_is_detected_even_with_scanner_noise() -> None:
    rules = QualitySettings()
    blank = _page(200, ink=False, noise=60)
    scan = measure_page(_png(blank, 200), "image/png", 0, max_pixels=MAX_PIXELS)
    assert scan.ink < rules.blank_below
    checks = {c.name: c for c in quality_checks(rules, "成绩单", scan, _result())}
    assert checks["blank"].verdict is Verdict.warn
    assert checks["blank"].reading == "blank"


def test_a_page_with_one_short_line_is_not_blank() -> None:
    page = _page(200, ink=False)
    draw = ImageDraw.Draw(page)
    for col in range(12):  # about a dozen characters of 10 pt text
        draw.rectangle((200 + col * 30, 400, 200 + col * 30 + 20, 424), outline=0, width=3)
    scan = measure_page(_png(page, 200), "image/png", 0, max_pixels=MAX_PIXELS)
    assert scan.ink > QualitySettings().blank_below


def _pdf_with_image(image: Image.Image, page_in: tuple[float, float]) -> bytes:
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(page_in[0] * 72, page_in[1] * 72)
    obj = pdfium.PdfImage.new(pdf)
    obj.set_bitmap(pdfium.PdfBitmap.from_pil(image))
    obj.set_matrix(pdfium.PdfMatrix().scale(page_in[0] * 72, page_in[1] * 72))
    page.insert_obj(obj)
    page.gen_content()
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_a_scanned_pdf_page_has_its_images_resolution() -> None:
    image = _page(150, mode="RGB", seal=True)
    data = _pdf_with_image(image, A4_IN)
    scan = measure_page(data, "application/pdf", 0, max_pixels=MAX_PIXELS)
    assert scan.dpi == pytest.approx(150, abs=1)
    assert paper_size(scan.width_in or 0, scan.height_in or 0) == "A4"
    assert scan.colour is ColourMode.colour


def test_a_born_digital_pdf_page_has_no_scan_resolution() -> None:
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(595, 842)
    out = io.BytesIO()
    pdf.save(out)
    scan = measure_page(out.getvalue(), "application/pdf", 0, max_pixels=MAX_PIXELS)
    assert scan.dpi is None
    assert paper_size(scan.width_in or 0, scan.height_in or 0) == "A4"
