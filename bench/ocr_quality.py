"""OCR quality and speed on a scanned corpus, through the full page pipeline (issue 9).

For every page of the corpus (``manifest.jsonl``: the exact text of each page and its scanner
defects), :func:`ocr.read_page` reads it and the character error rate is measured: the
Levenshtein distance between the recognised text and the truth, both with all whitespace
removed, divided by the truth's length. The baseline is plain Tesseract (``chi_sim+eng``,
automatic segmentation) on the raw page, with no cleaning, turning or deskewing.

Speed: the full pipeline over the same pages in a pool of ``os.cpu_count()`` processes, then
in one process; every engine runs on one thread, so the ratio shows how pages scale over cores.
Turned pages (``rotatedN`` in the manifest, N degrees clockwise to set right) count as
upright when the pipeline turned them by exactly N.

Run from the repository root: ``python bench/ocr_quality.py [--corpus DIR] [--engine NAME]
[--limit N] [--no-baseline] [--no-one-core]``. Prints one line per page, then one JSON object
of the figures. It prints figures and the corpus's file names only, never recognised text.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from ocr import ENGINES, PageResult, read_page, warm_engine  # noqa: E402
from ocr.engines.tesseract import TesseractEngine  # noqa: E402
from ocr.rasterize import load_page  # noqa: E402

LANGUAGES = "chi_sim+eng"
MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
}
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Page:
    """One page of the corpus with its truth."""

    path: Path
    index: int
    truth: str
    degradations: tuple[str, ...]

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.path.suffix.lower()]

    @property
    def turned(self) -> int:
        """Degrees clockwise the manifest says the page must be turned; 0 when upright."""
        for degradation in self.degradations:
            if degradation.startswith("rotated"):
                return int(degradation.removeprefix("rotated"))
        return 0


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions) between two strings."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def cer(recognised: str, truth: str) -> float:
    """Character error rate with all whitespace removed from both texts."""
    hypothesis = _WHITESPACE.sub("", recognised)
    reference = _WHITESPACE.sub("", truth)
    return levenshtein(hypothesis, reference) / max(1, len(reference))


def load_corpus(corpus: Path, limit: int | None) -> list[Page]:
    """The corpus's pages in manifest order, the first ``limit`` of them when given."""
    pages: list[Page] = []
    with (corpus / "manifest.jsonl").open(encoding="utf-8") as manifest:
        for line in manifest:
            if not line.strip():
                continue
            document = json.loads(line)
            for index, truth in enumerate(document["text"]):
                degradations = tuple(document.get("degradations", [[]] * (index + 1))[index])
                pages.append(Page(corpus / document["file"], index, truth, degradations))
    return pages[:limit] if limit else pages


def _init(engine: str) -> None:
    warm_engine(engine, LANGUAGES)


def _read(job: tuple[str, str, int, str]) -> dict[str, Any]:
    path, media_type, index, engine = job
    data = Path(path).read_bytes()
    return read_page(data, media_type, index, engine=engine, languages=LANGUAGES).to_json()


def run_pipeline(pages: list[Page], engine: str, processes: int) -> tuple[list[PageResult], float]:
    """Every page through :func:`ocr.read_page` in ``processes`` processes; results, seconds."""
    jobs = [(str(p.path), p.media_type, p.index, engine) for p in pages]
    with ProcessPoolExecutor(processes, initializer=_init, initargs=(engine,)) as pool:
        # Start every process and load its models first: the figure is steady throughput,
        # as in the workers, which load their engine once and then read page after page.
        list(pool.map(_settle, [0.5] * processes))
        started = time.perf_counter()
        results = [PageResult.from_json(r) for r in pool.map(_read, jobs)]
        elapsed = time.perf_counter() - started
    return results, elapsed


def _settle(seconds: float) -> None:
    time.sleep(seconds)


def _baseline(job: tuple[str, str, int]) -> str:
    path, media_type, index = job
    page = load_page(Path(path).read_bytes(), media_type, index, max_pixels=200_000_000)
    return TesseractEngine(LANGUAGES).plain_text(np.asarray(page.convert("L"), dtype=np.uint8))


def run_baseline(pages: list[Page], processes: int) -> list[float]:
    """CER of plain Tesseract on each raw page."""
    jobs = [(str(p.path), p.media_type, p.index) for p in pages]
    with ProcessPoolExecutor(processes) as pool:
        texts = list(pool.map(_baseline, jobs))
    return [cer(text, page.truth) for text, page in zip(texts, pages, strict=True)]


def _commit() -> str | None:
    head = ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (ROOT / ".git" / ref[5:]).read_text().strip()
        return ref
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "dev")
    parser.add_argument("--engine", choices=ENGINES, default="rapidocr")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages")
    parser.add_argument("--no-baseline", action="store_true", help="skip plain Tesseract")
    parser.add_argument("--no-one-core", action="store_true", help="skip the one-process run")
    args = parser.parse_args(argv)

    pages = load_corpus(args.corpus, args.limit)
    cores = os.cpu_count() or 1
    results, seconds_all = run_pipeline(pages, args.engine, cores)
    cers = [cer(r.text, p.truth) for r, p in zip(results, pages, strict=True)]
    baseline = None if args.no_baseline else run_baseline(pages, cores)

    print(f"{'file':<16} {'page':>4}  {'cer':>6}  {'base':>6}  {'rot':>4}  {'skew':>5}  defects")
    for i, (page, result, error) in enumerate(zip(pages, results, cers, strict=True)):
        base = f"{baseline[i]:6.3f}" if baseline else "     -"
        defects = ",".join(d for d in page.degradations if not d.startswith("noise"))
        print(
            f"{page.path.name:<16} {page.index:>4}  {error:6.3f}  {base}  "
            f"{result.rotation:>4}  {result.skew:>5.1f}  {defects}"
        )

    seconds_one = None
    if not args.no_one_core:
        _, seconds_one = run_pipeline(pages, args.engine, 1)

    turned = [(p, r) for p, r in zip(pages, results, strict=True) if p.turned]
    figures: dict[str, Any] = {
        "engine": args.engine,
        "pages": len(pages),
        "cer_mean": round(statistics.fmean(cers), 4),
        "cer_median": round(statistics.median(cers), 4),
        "cer_max": round(max(cers), 4),
        "baseline_cer_mean": round(statistics.fmean(baseline), 4) if baseline else None,
        "pages_per_min_all_cores": round(len(pages) / seconds_all * 60, 2),
        "pages_per_min_one_core": round(len(pages) / seconds_one * 60, 2) if seconds_one else None,
        "speedup": round(seconds_one / seconds_all, 2) if seconds_one else None,
        "processes": cores,
        "turned_pages": len(turned),
        "turned_pages_upright": sum(r.rotation == p.turned for p, r in turned),
        "needs_review": sum(r.needs_review for r in results),
        "text_layer_pages": sum(r.engine == "text_layer" for r in results),
        "machine": f"{platform.machine()} {platform.system()} {cores} cpu",
        "commit": _commit(),
    }
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
