"""The OCR engines on real scans: orientation, a whole page read, the access copy.

Real Tesseract (``chi_sim``) and RapidOCR on a few pages of the scanned corpus; kept to a
handful of pages so the suite stays quick on two cores.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil

import pypdfium2 as pdfium
import pytest
from PIL import Image

from dangan.errors import DependencyMissingError, InvalidInputError
from ocr import ENGINES, page_image, read_page, searchable_pdf
from ocr.engines import get_engine
from ocr.orient import detect_rotation
from ocr.preprocess import normalise_light, to_gray
from tests.corpus import scan

UPRIGHT = "IMG_3214.png"  # a form, upright, skewed by 2°, unevenly lit
TURNED = "scan_6369.jpg"  # a photographed form turned a quarter, with a red seal


@pytest.fixture(autouse=True)
def _tesseract_installed() -> None:
    if shutil.which("tesseract") is None:
        message = "tesseract is not installed (make system-test)"
        if os.environ.get("DANGAN_REQUIRE_SERVICES", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def _truth(name: str, page: int = 0) -> str:
    manifest = scan(name).parent / "manifest.jsonl"
    for line in manifest.read_text("utf-8").splitlines():
        document = json.loads(line)
        if document["file"] == name:
            return str(document["text"][page])
    raise AssertionError(f"{name} is not in the manifest")


def _cer(recognised: str, truth: str) -> float:
    a, b = re.sub(r"\s", "", recognised), re.sub(r"\s", "", truth)
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1] / max(1, len(b))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("turn", [90, 180, 270])
def test_a_page_turned_by_hand_is_found_turned(engine: str, turn: int) -> None:
    page = Image.open(scan(UPRIGHT))
    # Pillow turns counter-clockwise; reading it needs the same turn clockwise.
    turned = page.rotate(turn, expand=True, fillcolor=255)
    gray = normalise_light(to_gray(turned))
    assert detect_rotation(gray, get_engine(engine, "chi_sim+eng")) == turn


def test_rapidocr_reads_a_turned_sealed_form() -> None:
    data = scan(TURNED).read_bytes()
    result = read_page(data, "image/jpeg", 0, engine="rapidocr")
    assert result.rotation == 270
    assert abs(result.skew) > 1
    assert result.engine == "rapidocr"
    assert _cer(result.text, _truth(TURNED)) < 0.05
    image = page_image(data, "image/jpeg", 0, rotation=result.rotation, skew=result.skew)
    assert image.size == (result.width, result.height)
    assert image.height > image.width  # upright A4


def test_tesseract_reads_a_form_and_the_access_copy_is_searchable() -> None:
    data = scan(UPRIGHT).read_bytes()
    result = read_page(data, "image/png", 0, engine="tesseract")
    assert result.engine == "tesseract"
    assert result.rotation == 0
    assert 1.5 <= result.skew <= 2.5
    assert _cer(result.text, _truth(UPRIGHT)) < 0.2
    assert "休学" in result.text
    assert not re.search(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", result.text)
    image = page_image(data, "image/png", 0, rotation=result.rotation, skew=result.skew)
    out = io.BytesIO()
    searchable_pdf([(image, result)], out)
    pdf = pdfium.PdfDocument(out.getvalue())
    try:
        assert "休学" in pdf[0].get_textpage().get_text_range()
    finally:
        pdf.close()


def test_unknown_engines_and_missing_language_packs_are_named() -> None:
    with pytest.raises(InvalidInputError):
        get_engine("abbyy", "chi_sim")
    with pytest.raises(DependencyMissingError):
        get_engine("tesseract", "chi_sim+zzz_not_installed")
    with pytest.raises(DependencyMissingError):
        get_engine("rapidocr", "jpn")
