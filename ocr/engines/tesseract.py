"""Tesseract, run as the ``tesseract`` program: every command line of dangan lives here.

The page goes to Tesseract on its stdin as PNG and the TSV result comes back on stdout, so no
page image or text touches the disk. ``OMP_THREAD_LIMIT=1`` keeps Tesseract on one thread:
dangan runs pages in parallel over processes, and Tesseract's own threads would only fight
them for the same cores.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import shutil
import subprocess  # the one module of dangan that runs a program

import cv2
import numpy as np
import numpy.typing as npt

from dangan.errors import DanganError, DependencyMissingError, InvalidInputError
from ocr.engines.base import OcrEngine, Recognition, recognition
from ocr.result import Word

__all__ = ["TesseractEngine", "installed_languages"]

#: Seconds one Tesseract run may take before it is given up.
_TIMEOUT = 300
#: Page segmentation: sparse text finds the cells of forms and tables, which are most of a
#: student record; reading order is rebuilt from the boxes afterwards.
_PSM_PAGE = 11
#: A uniform block of text: enough to judge whether a strip reads upright.
_PSM_STRIP = 6


def _program() -> str:
    path = shutil.which("tesseract")
    if path is None:
        raise DependencyMissingError("the tesseract program is not installed")
    return path


def _run(args: list[str], stdin: bytes = b"") -> str:
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    try:
        done = subprocess.run(  # noqa: S603 -- fixed program, arguments built here
            [_program(), *args],
            input=stdin,
            capture_output=True,
            env=env,
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DanganError("tesseract took too long on a page") from exc
    except OSError as exc:
        raise DependencyMissingError("the tesseract program cannot be run") from exc
    if done.returncode != 0:
        # stderr names language packs and options, never page content.
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise DanganError(f"tesseract failed: {' '.join(detail)}")
    return done.stdout.decode("utf-8", "replace")


@functools.cache
def installed_languages() -> frozenset[str]:
    """The language packs Tesseract has, e.g. ``{"chi_sim", "eng", "osd"}``.

    :raises DependencyMissingError: Tesseract is not installed.
    """
    lines = _run(["--list-langs"]).splitlines()
    return frozenset(line.strip() for line in lines[1:] if line.strip())


def _png(pixels: npt.NDArray[np.uint8]) -> bytes:
    ok, encoded = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise DanganError("a page image could not be encoded")
    return bytes(encoded)


def _words(tsv: str, scale: float = 1.0) -> list[Word]:
    words: list[Word] = []
    reader = csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    for row in reader:
        text = (row.get("text") or "").strip()
        try:
            confidence = float(row["conf"])
            left, top = int(row["left"]), int(row["top"])
            width, height = int(row["width"]), int(row["height"])
        except (KeyError, TypeError, ValueError):
            continue
        if not text or confidence < 0:
            continue
        box = (
            round(left / scale),
            round(top / scale),
            round((left + width) / scale),
            round((top + height) / scale),
        )
        words.append(Word(text=text, box=box, confidence=min(1.0, confidence / 100)))
    return words


class TesseractEngine(OcrEngine):
    """Tesseract 4/5 with the LSTM models of the given languages (e.g. ``chi_sim+eng``)."""

    name = "tesseract"
    review_below = 0.7

    def __init__(self, languages: str) -> None:
        """Check that Tesseract and every language pack are installed.

        :param languages: Tesseract's ``-l`` value, packs joined by ``+``.
        :raises InvalidInputError: ``languages`` is malformed.
        :raises DependencyMissingError: Tesseract or a language pack is missing.
        """
        wanted = languages.split("+")
        if not all(part and part.replace("_", "").isalnum() for part in wanted):
            raise InvalidInputError(f"malformed OCR languages {languages!r}")
        missing = sorted(set(wanted) - installed_languages())
        if missing:
            raise DependencyMissingError(f"tesseract language packs missing: {', '.join(missing)}")
        self.languages = languages

    def _tsv(self, pixels: npt.NDArray[np.uint8], psm: int) -> str:
        args = ["stdin", "stdout", "-l", self.languages, "--psm", str(psm), "tsv"]
        return _run(args, _png(pixels))

    def recognize(self, pixels: npt.NDArray[np.uint8]) -> Recognition:
        """Read an upright gray page; see :meth:`OcrEngine.recognize`."""
        return recognition(_words(self._tsv(pixels, _PSM_PAGE)))

    def upright_score(self, pixels: npt.NDArray[np.uint8]) -> float:
        """Mean confidence of the page read as one block (see :meth:`OcrEngine.upright_score`)."""
        words = _words(self._tsv(pixels, _PSM_STRIP))
        return sum(w.confidence * len(w.text) for w in words) / max(
            1, sum(len(w.text) for w in words)
        )

    def plain_text(self, pixels: npt.NDArray[np.uint8]) -> str:
        """Tesseract's own reading of a page as given: automatic segmentation, no cleaning.

        The baseline :mod:`bench.ocr_quality` measures the pipeline against.
        """
        return _run(["stdin", "stdout", "-l", self.languages, "--psm", "3"], _png(pixels))
