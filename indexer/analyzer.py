"""The Chinese analyzer of the index: overlapping CJK character bigrams.

Chinese has no spaces, OCR output is noisy, and most of what an archivist types is a name
(2-4 characters), a student number or a fragment of a form. Overlapping bigrams match any
substring of two characters or more without a dictionary, survive an OCR error with the loss of
two bigrams only, and require no positions: a phrase is matched as "all its bigrams in the
same field", which overlapping bigrams make nearly as precise as adjacency (see
``bench/analyzer_compare.py`` for the measurement against jieba that chose this).

Rules, the same at index and query time:

- a run of CJK characters of length 1 is one unigram token; a longer run gives its
  overlapping bigrams (``学籍档案`` -> ``学籍 籍档 档案``);
- a run of ASCII letters and digits is one lowercase token (``2015013501``, ``chemistry``);
- anything else (punctuation, spaces, full-width symbols) separates runs and is dropped;
- punctuation between runs does not matter, so a phrase typed with or without it matches.

This module never logs: what it sees is record text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from whoosh.analysis import Token, Tokenizer
from whoosh.fields import TEXT
from whoosh.formats import Frequency
from whoosh.system import pack_uint

__all__ = [
    "BigramText",
    "BigramTokenizer",
    "is_cjk",
    "split_terms",
    "terms_with_offsets",
]

# CJK Unified Ideographs, Extension A and the compatibility block; digits and Latin letters
# (ASCII and full-width are folded by NFKC-free lowercasing of ASCII only: OCR of these forms
# gives ASCII digits).
_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[0-9A-Za-z]+")


def is_cjk(char: str) -> bool:
    """Whether ``char`` (one character) is a CJK ideograph the analyzer cuts into bigrams.

    :param char: a single character.
    """
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def split_terms(text: str) -> list[str]:
    """The index terms of ``text`` in order; a term's position is its index in the list.

    This is the hot path of indexing: one regex scan for the runs, slicing for the bigrams.

    :param text: any text.
    """
    out: list[str] = []
    append = out.append
    extend = out.extend
    for run in _RUN.findall(text):
        first = run[0]
        if first < "\u3400":
            append(run.lower())
        elif len(run) == 1:
            append(run)
        else:
            extend([run[i : i + 2] for i in range(len(run) - 1)])
    return out


def terms_with_offsets(text: str) -> Iterator[tuple[str, int, int]]:
    """Like :func:`split_terms`, with each term's start and end character offsets.

    :param text: any text.
    """
    for match in _RUN.finditer(text):
        run = match.group()
        start = match.start()
        if run[0] < "\u3400":
            yield run.lower(), start, match.end()
        elif len(run) == 1:
            yield run, start, start + 1
        else:
            for i in range(len(run) - 1):
                yield run[i : i + 2], start + i, start + i + 2


class BigramTokenizer(Tokenizer):  # type: ignore[misc]  # whoosh is untyped
    """A Whoosh tokenizer over :func:`terms_with_offsets`, reusing one ``Token`` as Whoosh does."""

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        """Yield the tokens of ``value``; see ``whoosh.analysis.Tokenizer``.

        :param value: the text to tokenize.
        """
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        pos = start_pos
        for text, start, end in terms_with_offsets(value):
            token.text = text
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = text
            if positions:
                token.pos = pos
                pos += 1
            if chars:
                token.startchar = start_char + start
                token.endchar = start_char + end
            yield token


class _FastFrequency(Frequency):  # type: ignore[misc]  # whoosh is untyped
    """``Frequency`` that indexes through :func:`split_terms`, without a Token per term.

    No positions: with overlapping bigrams, "every bigram of the phrase in the same field"
    is nearly as precise as adjacency, and a frequency posting is much cheaper to write and
    to read (see ``indexer.engine``).
    """

    def word_values(self, value: str, analyzer: Any, **kwargs: Any) -> Iterator[Any]:
        fb = self.field_boost
        for term, n in Counter(split_terms(value)).items():
            yield term, n, n * fb, pack_uint(n)


class BigramText(TEXT):  # type: ignore[misc]  # whoosh is untyped
    """A ``TEXT`` field analysed into CJK bigrams, with term frequencies and no positions.

    :param field_boost: the field's weight relative to the body (index-time; kept at 1.0,
        the query applies the boosts).
    """

    def __init__(self, field_boost: float = 1.0) -> None:
        super().__init__(
            analyzer=BigramTokenizer(), phrase=False, stored=False, field_boost=field_boost
        )
        self.format = _FastFrequency(field_boost=field_boost)
