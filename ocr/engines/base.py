"""The interface every OCR engine implements, and the reading-order helpers they share.

An engine turns one upright, levelled, cleaned page image into text pieces with boxes. It must
run on one thread (pages run in parallel over processes) and must never log what it reads.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ocr.result import Word

__all__ = ["OcrEngine", "Recognition", "join_line", "mean_confidence", "order_lines", "recognition"]

_CJK = (
    r"\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
)
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")


@dataclass(frozen=True)
class Recognition:
    """What an engine read on a page: the text in reading order, its pieces, mean confidence."""

    text: str
    words: tuple[Word, ...]
    confidence: float


class OcrEngine(ABC):
    """One OCR engine, loaded once per process (see :func:`ocr.engines.get_engine`)."""

    #: The name callers choose it by, recorded in :attr:`ocr.PageResult.engine`.
    name: str
    #: Pages whose mean confidence is below this are flagged for review. Engines calibrate
    #: confidence differently, so each sets its own (calibrated on the dev corpus: pages
    #: below it had character error rates of 10% or more).
    review_below: float

    @abstractmethod
    def recognize(self, pixels: npt.NDArray[np.uint8]) -> Recognition:
        """Read an upright page.

        :param pixels: an 8-bit gray page, text upright and level.
        :raises DependencyMissingError: the engine or its language data is not installed.
        """

    @abstractmethod
    def upright_score(self, pixels: npt.NDArray[np.uint8]) -> float:
        """How readable the page is the way it is turned now; higher means more upright.

        Only compared between turns of the same page, so any scale will do. Meant to be cheap:
        callers pass a reduced page.
        """


def order_lines(words: list[Word]) -> list[list[Word]]:
    """Group text pieces into lines (by vertical overlap), top to bottom, each left to right."""
    lines: list[list[Word]] = []
    spans: list[tuple[float, float]] = []
    for word in sorted(words, key=lambda w: (w.box[1] + w.box[3]) / 2):
        top, bottom = word.box[1], word.box[3]
        centre = (top + bottom) / 2
        height = max(1, bottom - top)
        for i in range(len(lines) - 1, max(-1, len(lines) - 4), -1):
            line_top, line_bottom = spans[i]
            line_height = max(1.0, line_bottom - line_top)
            line_centre = (line_top + line_bottom) / 2
            if abs(centre - line_centre) < 0.5 * min(height, line_height):
                lines[i].append(word)
                spans[i] = (min(line_top, top), max(line_bottom, bottom))
                break
        else:
            lines.append([word])
            spans.append((top, bottom))
    ordered = sorted(zip(spans, lines, strict=True), key=lambda pair: pair[0][0] + pair[0][1])
    return [sorted(line, key=lambda w: w.box[0]) for _, line in ordered]


def join_line(pieces: list[str]) -> str:
    """The pieces of one line joined by spaces, without spaces next to Chinese characters."""
    return _SPACE_BETWEEN_CJK.sub("", " ".join(piece.strip() for piece in pieces)).strip()


def mean_confidence(words: tuple[Word, ...] | list[Word]) -> float:
    """Confidence averaged over characters, so one stray mark does not weigh like a sentence."""
    weights = [len(word.text) for word in words]
    total = sum(weights)
    if not total:
        return 0.0
    return sum(w.confidence * n for w, n in zip(words, weights, strict=True)) / total


def recognition(words: list[Word]) -> Recognition:
    """Assemble pieces into a :class:`Recognition` in reading order."""
    lines = order_lines(words)
    text = "\n".join(filter(None, (join_line([w.text for w in line]) for line in lines)))
    ordered = tuple(word for line in lines for word in line)
    return Recognition(text=text, words=ordered, confidence=mean_confidence(ordered))
