"""Find which way up a page was scanned: 0, 90, 180 or 270 degrees.

Two questions, answered by two means. *Are the lines horizontal or vertical?* The ink's
projection profile answers it without any OCR: across lines of text, row sums alternate
between ink and gaps, along them they are flat. *Which of the two remaining turns is upright?*
Here the engine judges (:meth:`OcrEngine.upright_score`): its recognition is confident on
upright text and not on text upside down. Tesseract's own OSD is not used: on Chinese pages
it often answers nothing or, at low confidence, the wrong way.
"""

from __future__ import annotations

import numpy as np

from ocr.engines.base import OcrEngine
from ocr.preprocess import Gray, ink_mask, shrink

__all__ = ["detect_rotation", "line_axis"]

#: One axis's profile must be this much stronger than the other's to decide without OCR.
_AXIS_MARGIN = 1.5
#: Pages are scored for orientation at this size (longest side, pixels): faster, and enough.
_SCORE_SIDE = 1600


def line_axis(gray: Gray) -> str:
    """``"horizontal"``, ``"vertical"`` or ``"unsure"``: which way the page's lines run."""
    mask = ink_mask(gray)
    rows, cols = mask.sum(axis=1), mask.sum(axis=0)
    if not rows.any():
        return "horizontal"
    across_rows = float(np.var(rows)) / float(np.mean(rows)) ** 2
    across_cols = float(np.var(cols)) / float(np.mean(cols)) ** 2
    if across_rows >= _AXIS_MARGIN * across_cols:
        return "horizontal"
    if across_cols >= _AXIS_MARGIN * across_rows:
        return "vertical"
    return "unsure"


def _turned(gray: Gray, rotation: int) -> Gray:
    # np.rot90 turns counter-clockwise; k=-1 is one clockwise quarter turn.
    return np.ascontiguousarray(np.rot90(gray, k=-(rotation // 90)))


def detect_rotation(gray: Gray, engine: OcrEngine) -> int:
    """Degrees to turn ``gray`` clockwise so that its text reads upright.

    :param gray: the page, cleaned (see :mod:`ocr.preprocess`), as scanned.
    :param engine: judges the candidate turns by how well it reads them.
    """
    axis = line_axis(gray)
    candidates = {"horizontal": (0, 180), "vertical": (90, 270)}.get(axis, (0, 90, 180, 270))
    small = shrink(gray, _SCORE_SIDE)
    scores = {rotation: engine.upright_score(_turned(small, rotation)) for rotation in candidates}
    # Ties go to the smaller turn, so the answer is the same on every run.
    return max(candidates, key=lambda rotation: (scores[rotation], -rotation))
