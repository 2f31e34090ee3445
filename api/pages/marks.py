"""Text cut at the places a query matched, for a template to wrap the matches in ``<mark>``
(and escape everything, marks included, as Jinja2 does)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Piece", "cut"]


@dataclass(frozen=True)
class Piece:
    text: str
    is_hit: bool


def cut(text: str, spans: Iterable[tuple[int, int]]) -> list[Piece]:
    """``text`` in pieces, alternating between unmatched text and the ``(start, end)`` spans
    (sorted, not overlapping, as the indexer's highlight offsets are)."""
    pieces: list[Piece] = []
    at = 0
    for start, end in spans:
        if start > at:
            pieces.append(Piece(text[at:start], False))
        pieces.append(Piece(text[start:end], True))
        at = end
    if at < len(text):
        pieces.append(Piece(text[at:], False))
    return pieces
