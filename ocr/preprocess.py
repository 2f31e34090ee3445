"""Clean a scanned page for OCR: drop red seals, flatten uneven light, lift contrast.

All in memory with OpenCV on numpy arrays; these steps only ever feed the OCR engine (the
access copy keeps the scan's own look). General scanner defects only: nothing here knows any
particular document.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["Gray", "ink_mask", "normalise_light", "remove_rules", "shrink", "to_gray"]

Gray = npt.NDArray[np.uint8]

#: A pixel is seal ink when red exceeds both green and blue by this much (0..255).
_SEAL_MARGIN = 40


def to_gray(image: Image.Image) -> Gray:
    """The page as 8-bit gray, with red seal (印章) ink turned to paper.

    A red stamp over black text leaves the black strokes dark (they absorb red too), so
    whitening strongly red pixels removes the seal and keeps the text under it.
    """
    import cv2  # here: OpenCV (30 MiB) loads with the first page, not the server

    if image.mode == "L":
        return np.asarray(image, dtype=np.uint8).copy()
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    gray = cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2GRAY)
    seal = (red - np.maximum(green, blue)) > _SEAL_MARGIN
    # Where seal ink lies over paper, what is left is as light as the red channel.
    gray[seal] = np.maximum(gray[seal], red[seal].astype(np.uint8))
    return np.asarray(gray, dtype=np.uint8)


def _is_bilevel(gray: Gray) -> bool:
    counts = np.bincount(gray[::7, ::7].ravel(), minlength=256)
    return int(np.count_nonzero(counts)) <= 2


def normalise_light(gray: Gray) -> Gray:
    """Divide out the paper's brightness, so shadows and uneven light become white paper.

    Sensor noise is softened first (a 3x3 median). The background is a median over a
    downscaled copy with a window much wider than a stroke, so it follows the light and not
    the ink. Ink keeps its own darkness: no black-point stretch, which on a nearly blank page
    would blow the noise up into specks.
    """
    import cv2

    if _is_bilevel(gray):
        # A black-and-white scan has neither sensor noise nor shading to remove, and a
        # median would eat the thin strokes of its characters.
        return gray
    height, width = gray.shape
    smooth = cv2.medianBlur(gray, 3)
    scale = 8
    small = cv2.resize(
        smooth, (max(1, width // scale), max(1, height // scale)), interpolation=cv2.INTER_AREA
    )
    background = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5)))
    background = cv2.medianBlur(background, 21)
    background = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
    flat = cv2.divide(smooth, np.maximum(background, 1), scale=255)
    # Paper is the most common tone; make it white.
    paper = max(1.0, float(np.percentile(flat, 60)))
    return np.asarray(np.clip(flat.astype(np.float32) * (255.0 / paper), 0, 255), dtype=np.uint8)


def remove_rules(gray: Gray) -> Gray:
    """The page with the ruled lines of forms and tables turned to paper.

    A rule is a run of ink much longer than any stroke of a character (a twentieth of the
    page's width or height); OCR engines read rules as strings of 一, 丨 or ``|`` and lose the
    cells' text between them.
    """
    import cv2

    height, width = gray.shape
    ink = cv2.adaptiveThreshold(
        gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, 20
    )
    across = cv2.getStructuringElement(cv2.MORPH_RECT, (max(40, width // 20), 1))
    down = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(40, height // 20)))
    rules = cv2.bitwise_or(
        cv2.morphologyEx(ink, cv2.MORPH_OPEN, across), cv2.morphologyEx(ink, cv2.MORPH_OPEN, down)
    )
    if not rules.any():
        return gray
    rules = cv2.dilate(rules, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
    cleaned = gray.copy()
    cleaned[rules > 0] = 255
    return cleaned


def shrink(gray: Gray, max_side: int) -> Gray:
    """``gray`` scaled down (never up) so that its longer side is at most ``max_side``."""
    import cv2

    height, width = gray.shape
    factor = min(1.0, max_side / max(height, width))
    if factor == 1.0:
        return gray
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def ink_mask(gray: Gray, max_side: int = 1000) -> npt.NDArray[np.float32]:
    """A small 0/1 map of the dark strokes, for measuring orientation and skew cheaply."""
    import cv2

    mask = cv2.adaptiveThreshold(
        shrink(gray, max_side), 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, 15
    )
    return np.asarray(mask, dtype=np.float32)
