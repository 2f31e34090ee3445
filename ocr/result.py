"""The results of reading one page: :class:`Word` and :class:`PageResult`.

Plain frozen dataclasses that round-trip through JSON exactly, so the pipeline can store a
page's result (encrypted, like the scan) and rebuild the access copy from it later. They hold
students' names: never log them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PageResult", "Word"]


@dataclass(frozen=True)
class Word:
    """One recognised piece of text (a word, a character run or a line piece).

    :param text: the text, never empty.
    :param box: ``(x0, y0, x1, y1)`` in pixels of the normalised page image (turned and
        deskewed, as :func:`ocr.page_image` returns it), ``x1``/``y1`` exclusive.
    :param confidence: the engine's confidence, 0..1.
    """

    text: str
    box: tuple[int, int, int, int]
    confidence: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"text": self.text, "box": list(self.box), "confidence": self.confidence}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Word:
        """Rebuild a word from :meth:`to_json`'s dict.

        :raises KeyError, TypeError, ValueError: when ``data`` is not such a dict.
        """
        x0, y0, x1, y1 = (int(v) for v in data["box"])
        return cls(
            text=str(data["text"]), box=(x0, y0, x1, y1), confidence=float(data["confidence"])
        )


@dataclass(frozen=True)
class PageResult:
    """What reading one page found.

    :param text: the page text, lines joined by ``"\\n"`` in reading order.
    :param words: the pieces of text with their boxes, for the access copy's text layer.
    :param confidence: mean confidence over the page, 0..1 (1.0 for a text layer).
    :param rotation: degrees the scan was turned *clockwise* to read it: 0, 90, 180 or 270.
    :param skew: degrees the turned page was then rotated *counter-clockwise* to level its
        lines (a small angle, positive or negative).
    :param width: width of the normalised image in pixels.
    :param height: height of the normalised image in pixels.
    :param engine: ``"tesseract"``, ``"rapidocr"`` or ``"text_layer"``.
    :param needs_review: the confidence is low; a person should look at the page.
    """

    text: str
    words: tuple[Word, ...]
    confidence: float
    rotation: int
    skew: float
    width: int
    height: int
    engine: str
    needs_review: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_json` turns back into an equal result."""
        return {
            "text": self.text,
            "words": [word.to_json() for word in self.words],
            "confidence": self.confidence,
            "rotation": self.rotation,
            "skew": self.skew,
            "width": self.width,
            "height": self.height,
            "engine": self.engine,
            "needs_review": self.needs_review,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageResult:
        """Rebuild a result from :meth:`to_json`'s dict.

        :raises KeyError, TypeError, ValueError: when ``data`` is not such a dict.
        """
        return cls(
            text=str(data["text"]),
            words=tuple(Word.from_json(word) for word in data["words"]),
            confidence=float(data["confidence"]),
            rotation=int(data["rotation"]),
            skew=float(data["skew"]),
            width=int(data["width"]),
            height=int(data["height"]),
            engine=str(data["engine"]),
            needs_review=bool(data["needs_review"]),
        )
