"""OCR engines behind one interface (:class:`OcrEngine`), loaded once per process."""

from __future__ import annotations

import functools

from dangan.errors import InvalidInputError
from ocr.engines.base import OcrEngine, Recognition

__all__ = ["ENGINES", "OcrEngine", "Recognition", "get_engine"]

#: The engines :func:`get_engine` knows, by name.
ENGINES: tuple[str, ...] = ("tesseract", "rapidocr")


@functools.cache
def get_engine(engine: str, languages: str) -> OcrEngine:
    """The engine ``engine`` for ``languages``, created on first use and kept for the process.

    Also keeps OpenCV on one thread: pages run in parallel over processes.

    :raises InvalidInputError: an unknown engine name.
    :raises DependencyMissingError: the engine or a language pack is not installed.
    """
    import cv2  # here, not at the top: a server that never reads a page never loads OpenCV

    cv2.setNumThreads(1)
    if engine == "tesseract":
        from ocr.engines.tesseract import TesseractEngine

        return TesseractEngine(languages)
    if engine == "rapidocr":
        from ocr.engines.rapidocr import RapidOcrEngine

        return RapidOcrEngine(languages)
    raise InvalidInputError(f"unknown OCR engine {engine!r}; choose one of {', '.join(ENGINES)}")
