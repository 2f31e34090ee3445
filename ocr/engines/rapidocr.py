"""RapidOCR: the PP-OCRv4 Chinese detection and recognition models on onnxruntime.

Loaded once per process (model loading takes a second) and limited to one thread per
onnxruntime session, because dangan runs pages in parallel over processes.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from dangan.errors import DependencyMissingError
from ocr.engines.base import OcrEngine, Recognition, recognition
from ocr.result import Word

__all__ = ["RapidOcrEngine"]

#: Languages the bundled models read; other Tesseract-style names are refused.
_LANGUAGES = frozenset({"chi_sim", "eng"})


def _box(points: Any) -> tuple[int, int, int, int]:
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))


class RapidOcrEngine(OcrEngine):
    """PP-OCR models for simplified Chinese with Latin letters and digits."""

    name = "rapidocr"
    review_below = 0.9

    def __init__(self, languages: str) -> None:
        """Load the models.

        :param languages: ``chi_sim``, ``eng`` or both joined by ``+``; the models read both.
        :raises DependencyMissingError: rapidocr-onnxruntime is not installed, or the
            languages ask for a script its models do not read.
        """
        missing = sorted(set(languages.split("+")) - _LANGUAGES)
        if missing:
            raise DependencyMissingError(f"rapidocr has no models for: {', '.join(missing)}")
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise DependencyMissingError("rapidocr-onnxruntime is not installed") from exc
        self.languages = languages
        self._ocr: Any = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)

    def recognize(self, pixels: npt.NDArray[np.uint8]) -> Recognition:
        """Read an upright gray page; see :meth:`OcrEngine.recognize`."""
        result, _ = self._ocr(cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR))
        words = [
            Word(text=str(text).strip(), box=_box(points), confidence=float(score))
            for points, text, score in (result or [])
            if str(text).strip()
        ]
        return recognition(words)

    def upright_score(self, pixels: npt.NDArray[np.uint8]) -> float:
        """Share of text lines the 0/180 classifier calls upright, weighted by its certainty.

        See :meth:`OcrEngine.upright_score`.
        """
        image = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
        boxes, _ = self._ocr.text_det(image)
        if boxes is None or len(boxes) == 0:
            return 0.0
        crops = self._ocr.get_crop_img_list(image, list(boxes))
        _, labels, _ = self._ocr.text_cls(crops)
        votes = [float(p) if label == "0" else 1.0 - float(p) for label, p in labels]
        return sum(votes) / len(votes)
