"""The ocr package without an OCR engine: page counting, bad input, text layers, JSON,
reading order, the geometry of turning and deskewing, and the searchable access copy."""

from __future__ import annotations

import io
import json

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw

from dangan.errors import InvalidInputError
from ocr import PageResult, Word, page_count, page_image, read_page, searchable_pdf
from ocr.deskew import estimate_skew, level, rotate_array
from ocr.engines.base import join_line, order_lines
from ocr.orient import line_axis
from ocr.preprocess import ink_mask, normalise_light, to_gray
from tests.corpus import scan

BORN_DIGITAL = "doc_6555.pdf"


def _image_bytes(fmt: str, frames: int = 1) -> bytes:
    images = [Image.new("L", (60, 80), 255 - 40 * i) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format=fmt, save_all=frames > 1, append_images=images[1:])
    return buffer.getvalue()


def _lines_page(width: int = 800, height: int = 1000) -> Image.Image:
    """A page of dark horizontal text-like bars, evenly spaced, like lines of print."""
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    for y in range(100, height - 100, 40):
        for x in range(80, width - 80, 24):
            draw.rectangle((x, y, x + 18, y + 18), fill=20)
    return page


def test_page_count_of_each_media_type() -> None:
    assert page_count(_image_bytes("PNG"), "image/png") == 1
    assert page_count(_image_bytes("JPEG"), "image/jpeg") == 1
    assert page_count(_image_bytes("TIFF", frames=3), "image/tiff") == 3
    assert page_count(scan(BORN_DIGITAL).read_bytes(), "application/pdf") == 2


@pytest.mark.parametrize("media_type", ["application/pdf", "image/tiff", "image/jpeg", "image/png"])
def test_garbage_is_invalid_input(media_type: str) -> None:
    with pytest.raises(InvalidInputError):
        page_count(b"\x00not a scan at all" * 10, media_type)
    with pytest.raises(InvalidInputError):
        read_page(b"\x00not a scan at all" * 10, media_type, 0)


def test_a_media_type_that_does_not_match_the_bytes_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        page_count(_image_bytes("PNG"), "image/jpeg")
    with pytest.raises(InvalidInputError):
        page_count(_image_bytes("PNG"), "text/plain")


def test_a_page_past_the_end_or_over_the_pixel_limit_is_refused() -> None:
    data = _image_bytes("TIFF", frames=2)
    with pytest.raises(InvalidInputError):
        page_image(data, "image/tiff", 2, rotation=0, skew=0.0)
    with pytest.raises(InvalidInputError):
        page_image(data, "image/tiff", 0, rotation=0, skew=0.0, max_pixels=100)
    second = page_image(data, "image/tiff", 1, rotation=0, skew=0.0)
    assert second.getpixel((0, 0)) == 215


def test_born_digital_pdf_page_gives_its_text_layer() -> None:
    data = scan(BORN_DIGITAL).read_bytes()
    result = read_page(data, "application/pdf", 0)
    truth = next(
        json.loads(line)["text"][0]
        for line in (scan(BORN_DIGITAL).parent / "manifest.jsonl").read_text("utf-8").splitlines()
        if json.loads(line)["file"] == BORN_DIGITAL
    )
    assert result.engine == "text_layer"
    assert "".join(result.text.split()) == "".join(truth.split())
    assert (result.rotation, result.skew, result.needs_review) == (0, 0.0, False)
    image = page_image(data, "application/pdf", 0, rotation=0, skew=0.0)
    assert image.size == (result.width, result.height)
    # Digits render even where no Chinese font is installed (pdfium does not embed one).
    numbered = next(word for word in result.words if "2018" in word.text)
    x0, y0, x1, y1 = numbered.box
    assert 0 <= x0 < x1 <= result.width
    assert 0 <= y0 < y1 <= result.height
    # The box holds the printed line: dark pixels inside it.
    assert np.asarray(image.convert("L").crop(numbered.box)).min() < 128


def test_page_result_json_round_trips_exactly() -> None:
    result = PageResult(
        text="学生 成绩单\nGPA 3.05",
        words=(Word("学生成绩单", (10, 20, 300, 60), 0.9731), Word("GPA", (5, 80, 90, 110), 0.5)),
        confidence=0.8123,
        rotation=270,
        skew=-1.3,
        width=1654,
        height=2338,
        engine="rapidocr",
        needs_review=True,
    )
    encoded = json.dumps(result.to_json(), ensure_ascii=False)
    assert PageResult.from_json(json.loads(encoded)) == result


def test_pieces_are_ordered_into_lines_top_to_bottom_left_to_right() -> None:
    words = [
        Word("学号", (400, 102, 480, 140), 1.0),
        Word("姓名", (10, 100, 90, 138), 1.0),
        Word("第二行", (12, 200, 200, 240), 1.0),
        Word("任欣强", (120, 98, 230, 136), 1.0),
    ]
    lines = order_lines(words)
    assert [[w.text for w in line] for line in lines] == [["姓名", "任欣强", "学号"], ["第二行"]]
    assert join_line(["档案 编号：", "2019-休学-001", "Score", "3.05"]) == (
        "档案编号：2019-休学-001 Score 3.05"
    )


def test_lines_are_found_horizontal_or_vertical() -> None:
    page = np.asarray(_lines_page(), dtype=np.uint8)
    assert line_axis(page) == "horizontal"
    assert line_axis(np.ascontiguousarray(np.rot90(page))) == "vertical"


@pytest.mark.parametrize("angle", [-3.0, 1.5, 6.0])
def test_skew_is_measured_and_levelled(angle: float) -> None:
    page = _lines_page()
    tilted = rotate_array(np.asarray(page, dtype=np.uint8), -angle)
    measured = estimate_skew(ink_mask(tilted))
    assert measured == pytest.approx(angle, abs=0.3)


def test_seal_red_is_removed_and_light_made_even() -> None:
    page = Image.new("RGB", (400, 400), (235, 235, 235))
    draw = ImageDraw.Draw(page)
    draw.ellipse((100, 100, 300, 300), outline=(210, 40, 40), width=12)  # a red seal
    draw.rectangle((180, 190, 220, 210), fill=(20, 20, 20))  # black text under it
    gray = to_gray(page)
    assert gray[200, 104] > 180  # the seal's ring became paper
    assert gray[200, 200] < 60  # the text stayed black
    shaded = np.tile(np.linspace(120, 240, 400, dtype=np.uint8), (400, 1))
    flat = normalise_light(shaded)
    assert abs(int(flat[200, 10]) - int(flat[200, 390])) < 20


def test_a_black_and_white_scan_keeps_its_thin_strokes() -> None:
    page = np.full((200, 200), 255, dtype=np.uint8)
    page[100, 20:180] = 0  # a one-pixel stroke, as in a 200 dpi bilevel TIFF
    assert np.array_equal(normalise_light(page), page)


def test_level_turns_clockwise_and_keeps_geometry_for_page_image() -> None:
    page = Image.new("L", (300, 200), 255)
    ImageDraw.Draw(page).rectangle((0, 0, 20, 20), fill=0)  # a mark at the top left
    turned = level(page, 90, 0.0)
    assert turned.size == (200, 300)
    assert turned.getpixel((190, 5)) == 0  # clockwise: top left goes to top right
    tilted = level(page, 0, 2.0)
    assert tilted.width > 300
    assert tilted.height > 200


def test_searchable_pdf_has_the_pages_and_a_findable_text_layer() -> None:
    image = Image.new("RGB", (1654, 2338), "white")
    image.info["dpi"] = (200, 200)
    result = PageResult(
        text="学生休学申请审批表\n档案编号 2019",
        words=(
            Word("学生休学申请审批表", (300, 200, 1300, 280), 0.97),
            Word("2019", (300, 400, 500, 450), 0.9),
        ),
        confidence=0.95,
        rotation=0,
        skew=0.0,
        width=1654,
        height=2338,
        engine="tesseract",
        needs_review=False,
    )
    out = io.BytesIO()
    searchable_pdf([(image, result), (image, result)], out)
    pdf = pdfium.PdfDocument(out.getvalue())
    try:
        assert len(pdf) == 2
        width, height = pdf[0].get_size()
        assert width == pytest.approx(1654 * 72 / 200, abs=1)
        assert height == pytest.approx(2338 * 72 / 200, abs=1)
        textpage = pdf[0].get_textpage()
        text = textpage.get_text_range()
        assert "学生休学申请审批表" in text
        left, _bottom, _right, top = textpage.get_charbox(0, loose=True)
        assert left == pytest.approx(300 * 72 / 200, abs=2)
        # The glyphs sit inside the word's box (200..280 px, at 72/200 pt a pixel).
        assert 200 * 72 / 200 - 1 <= height - top <= 280 * 72 / 200
        # Invisible text: the rendered page is still blank paper.
        assert np.asarray(pdf[0].render(scale=0.5).to_pil().convert("L")).min() > 250
    finally:
        pdf.close()
