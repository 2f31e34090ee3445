"""Snippets: windows of a hit's pages around what the query matched, with offsets to mark.

The search service calls this on the decrypted OCR text of the hits it shows (the index does
not store page text). A query string matches here as it does in the index: case-insensitive,
its runs of Chinese characters, letters and digits in order, with any punctuation or spacing
between them (``HT-2017`` marks ``HT 2017`` too).

Never logs: the pages are record content.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from indexer.model import Snippet
from indexer.query import ParsedQuery

__all__ = ["highlight_spans", "make_snippets"]

_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[0-9A-Za-z]+")
_GAP = r"[^0-9A-Za-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]*"


def _pattern(text: str) -> re.Pattern[str] | None:
    runs = _RUN.findall(text)
    if not runs:
        return None
    return re.compile(_GAP.join(re.escape(run) for run in runs), re.IGNORECASE)


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def make_snippets(
    query: ParsedQuery, pages: Sequence[str], *, max_snippets: int = 3, width: int = 80
) -> tuple[Snippet, ...]:
    """Up to ``max_snippets`` windows of ``width`` characters, the richest in matches first
    chosen, returned in page order.

    A window starts a little before its first match; it holds every match that fits in it,
    and a window with more distinct query words beats one with repeats of one word. Line
    breaks become spaces, so offsets into ``text`` stay offsets into the page window.

    :param query: the parsed query the hit was found with.
    :param pages: the text of each page, in order.
    :param max_snippets: at most this many windows.
    :param width: characters per window.
    """
    patterns = [
        p for p in dict.fromkeys(_pattern(t) for t in query.highlight_terms) if p is not None
    ]
    if not patterns or max_snippets < 1 or width < 1:
        return ()
    windows: list[tuple[int, int, int, int, int, list[tuple[int, int]]]] = []
    for page_no, page in enumerate(pages, start=1):
        spans = sorted(
            (m.start(), m.end(), k)
            for k, pattern in enumerate(patterns)
            for m in pattern.finditer(page)
            if m.end() > m.start()
        )
        i = 0
        while i < len(spans):
            first = spans[i][0]
            start = max(0, min(first - width // 4, len(page) - width))
            end = min(len(page), start + width)
            inside = [(s, e, k) for s, e, k in spans if s >= start and s < end]
            words = len({k for _, _, k in inside})
            marks = [(s - start, min(e, end) - start) for s, e, _ in inside]
            windows.append((-words, -len(inside), page_no, start, end, marks))
            while i < len(spans) and spans[i][0] < end:
                i += 1
    chosen = sorted(windows)[:max_snippets]
    chosen.sort(key=lambda w: (w[2], w[3]))
    return tuple(
        Snippet(
            page=page_no,
            text=pages[page_no - 1][start:end].replace("\n", " "),
            highlights=_merge(marks),
        )
        for _, _, page_no, start, end, marks in chosen
    )


def highlight_spans(query: ParsedQuery, text: str) -> tuple[tuple[int, int], ...]:
    """Every place in ``text`` the query matched, as merged ``(start, end)`` offsets: what a
    page of OCR text shows marked when it is opened from a search."""
    patterns = [
        p for p in dict.fromkeys(_pattern(t) for t in query.highlight_terms) if p is not None
    ]
    return _merge(
        [(m.start(), m.end()) for p in patterns for m in p.finditer(text) if m.end() > m.start()]
    )
