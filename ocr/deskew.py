"""Measure and correct a page's skew, and turn it by quarter turns.

Skew is found by the projection profile: rotated by the right angle, the rows of a page of
horizontal text alternate between ink and blank, so the variance of the row sums of its ink
peaks. The geometry functions here are shared by OCR and the access copy, so a word's box
found on the normalised page lands on the same spot of :func:`ocr.page_image`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["MAX_SKEW", "estimate_skew", "level", "rotate_array", "turn"]

#: The largest skew looked for, in degrees either way.
MAX_SKEW = 10.0


def _profile_score(mask: npt.NDArray[np.float32], angle: float) -> float:
    import cv2  # here, not at the top: OpenCV (30 MiB) loads with the first page, not the server

    height, width = mask.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    rotated = cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_NEAREST)
    rows = rotated.sum(axis=1)
    return float(np.var(rows))


def estimate_skew(mask: npt.NDArray[np.float32]) -> float:
    """The counter-clockwise rotation in degrees that levels the text lines of ``mask``.

    :param mask: a small 0/1 ink map of an upright page (see :func:`ocr.preprocess.ink_mask`).
    """
    if not mask.any():
        return 0.0
    best = max(np.arange(-MAX_SKEW, MAX_SKEW + 0.01, 0.5), key=lambda a: _profile_score(mask, a))
    fine = np.arange(best - 0.5, best + 0.51, 0.1)
    angle = float(max(fine, key=lambda a: _profile_score(mask, a)))
    return round(angle, 1)


def turn(image: Image.Image, rotation: int) -> Image.Image:
    """``image`` turned ``rotation`` degrees clockwise (0, 90, 180 or 270), losslessly."""
    transposes = {
        90: Image.Transpose.ROTATE_270,  # Pillow names counter-clockwise turns.
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_90,
    }
    if rotation % 360 == 0:
        return image
    return image.transpose(transposes[rotation % 360])


def rotate_array(pixels: npt.NDArray[np.uint8], skew: float) -> npt.NDArray[np.uint8]:
    """``pixels`` turned ``skew`` degrees counter-clockwise, on a white canvas grown to fit."""
    if skew == 0:
        return pixels
    import cv2  # as above

    height, width = pixels.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), skew, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width = round(height * sin + width * cos)
    new_height = round(height * cos + width * sin)
    matrix[0, 2] += new_width / 2 - width / 2
    matrix[1, 2] += new_height / 2 - height / 2
    fill = (255,) * (pixels.shape[2] if pixels.ndim == 3 else 1)
    rotated = cv2.warpAffine(
        pixels,
        matrix,
        (new_width, new_height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )
    return np.asarray(rotated, dtype=np.uint8)


def level(image: Image.Image, rotation: int, skew: float) -> Image.Image:
    """The page normalised as OCR read it: turned ``rotation`` clockwise, then deskewed."""
    turned = turn(image, rotation)
    if skew == 0:
        return turned
    return Image.fromarray(rotate_array(np.asarray(turned), skew))
