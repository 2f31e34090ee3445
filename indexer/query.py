"""The query language of the search box, and its translation into a Whoosh query.

::

    任欣强 转学                  two terms, both required (AND)
    "中荣获三等奖"               a phrase: its characters adjacent and in order
    type:转学                    business type, exact
    year:2019  year:2019..2021   year, or an inclusive range (``2019..`` and ``..2021`` too)
    student:任欣强               a student's name or student number
    code:2023-新生入学           archive code, exact or prefix
    title:处分                   title only

A plain term or phrase is looked for in the archive code, the student's name and number, the
title, the paper location and the page text. A term of several Chinese characters is matched
as a phrase of its bigrams, so ``中荣获三等奖`` with or without quotes finds the same records.

Nothing here logs: queries hold students' names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from whoosh import matching
from whoosh import query as wq

from dangan.errors import InvalidInputError
from indexer.analyzer import is_cjk, split_terms
from indexer.schema import FIELD_BOOSTS, TEXT_FIELDS

__all__ = ["ParsedQuery", "compile_query", "parse_query"]

MAX_QUERY_CHARS = 500
MAX_CLAUSES = 32
_FIELDS = frozenset({"type", "year", "student", "code", "title"})
_QUOTES = {'"': '"', "“": "”", "”": "”"}
_YEAR = re.compile(r"^(\d{4})?(\.\.)?(\d{4})?$")
# An exact archive code typed as a plain term also matches the code field itself.
_CODE_BOOST = 8.0


@dataclass(frozen=True)
class ParsedQuery:
    """A query as the user meant it; build one with :func:`parse_query`.

    ``terms`` and ``phrases`` are looked for in every text field; the other fields are the
    filters of the same names. ``text`` is the query as typed.
    """

    text: str
    terms: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    business_types: tuple[str, ...] = ()
    year_from: int | None = None
    year_to: int | None = None
    students: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()

    @property
    def highlight_terms(self) -> tuple[str, ...]:
        """The strings a snippet should mark: every textual part of the query."""
        return self.terms + self.phrases + self.students + self.titles + self.codes

    @property
    def has_text(self) -> bool:
        """Whether the query asks for any text, not only filters."""
        return bool(self.terms or self.phrases or self.students or self.titles or self.codes)


def _tokens(text: str) -> list[tuple[str, bool]]:
    """Split ``text`` into ``(word, quoted)`` pairs; ``field:"a b"`` stays one word."""
    out: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in _QUOTES:
            close = text.find(_QUOTES[ch], i + 1)
            if close < 0:
                raise InvalidInputError("unterminated quote in query")
            out.append((text[i + 1 : close], True))
            i = close + 1
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] not in _QUOTES:
            i += 1
        word = text[start:i]
        name, colon, _ = word.partition(":")
        if (
            colon
            and word.endswith(":")
            and name.lower() in _FIELDS
            and i < n
            and text[i] in _QUOTES
        ):
            close = text.find(_QUOTES[text[i]], i + 1)
            if close < 0:
                raise InvalidInputError("unterminated quote in query")
            word += text[i + 1 : close]
            i = close + 1
        out.append((word, False))
    return out


def _year_range(value: str) -> tuple[int | None, int | None]:
    match = _YEAR.match(value)
    if not match or not (match.group(1) or match.group(3)):
        raise InvalidInputError("year: takes a year like 2019 or a range like 2019..2021")
    low, dots, high = match.groups()
    if not dots:
        if high:  # "20192021": two years run together
            raise InvalidInputError("year: takes a year like 2019 or a range like 2019..2021")
        return int(low), int(low)
    year_from = int(low) if low else None
    year_to = int(high) if high else None
    if year_from is not None and year_to is not None and year_from > year_to:
        raise InvalidInputError("year: range runs backwards")
    return year_from, year_to


def _searchable(value: str, what: str) -> str:
    value = value.strip()
    if not split_terms(value):
        raise InvalidInputError(f"{what} has nothing to search for")
    return value


def parse_query(text: str) -> ParsedQuery:
    """Parse the search box's text; see the module docstring for the language.

    :param text: the query as typed.
    :raises InvalidInputError: empty or over-long query, unterminated quote, a field with no
        value, a malformed or backwards year range, or a term with nothing searchable in it.
    """
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInputError(f"query is longer than {MAX_QUERY_CHARS} characters")
    words = _tokens(text)
    if not words:
        raise InvalidInputError("query is empty")
    if len(words) > MAX_CLAUSES:
        raise InvalidInputError(f"query has more than {MAX_CLAUSES} terms")
    terms: list[str] = []
    phrases: list[str] = []
    types: list[str] = []
    students: list[str] = []
    codes: list[str] = []
    titles: list[str] = []
    year_from: int | None = None
    year_to: int | None = None
    for word, quoted in words:
        if quoted:
            phrases.append(_searchable(word, "a quoted phrase"))
            continue
        name, colon, value = word.partition(":")
        field = name.lower()
        if not colon or field not in _FIELDS:
            terms.append(_searchable(word, f"the term {word!r}"))
            continue
        value = value.strip()
        if not value:
            raise InvalidInputError(f"{field}: needs a value")
        if field == "type":
            types.append(value)
        elif field == "code":
            codes.append(value)
        elif field == "student":
            students.append(_searchable(value, "student:"))
        elif field == "title":
            titles.append(_searchable(value, "title:"))
        else:
            low, high = _year_range(value)
            if low is not None:
                year_from = low if year_from is None else max(year_from, low)
            if high is not None:
                year_to = high if year_to is None else min(year_to, high)
    return ParsedQuery(
        text=text,
        terms=tuple(terms),
        phrases=tuple(phrases),
        business_types=tuple(types),
        year_from=year_from,
        year_to=year_to,
        students=tuple(students),
        codes=tuple(codes),
        titles=tuple(titles),
    )


class _AdjacentMatcher(matching.WrappingMatcher):  # type: ignore[misc]  # whoosh is untyped
    """An intersection of bigram postings that keeps the documents where they are adjacent.

    Whoosh's own phrase matcher builds span objects per candidate document; this intersects
    the candidate's start positions as sets (``positions - offset`` for each bigram), which
    is several times faster on the common phrases of form text.
    """

    def __init__(self, child: Any, leaves: list[tuple[Any, tuple[int, ...]]], boost: float):
        super().__init__(child, boost=boost)
        self._leaves = leaves
        self._seek()

    def _adjacent(self) -> bool:
        starts: set[int] | None = None
        for leaf, offsets in self._leaves:
            positions = leaf.value_as("positions")
            for offset in offsets:
                shifted = {p - offset for p in positions}
                starts = shifted if starts is None else starts & shifted
                if not starts:
                    return False
        return True

    def _seek(self) -> None:
        child = self.child
        while child.is_active() and not self._adjacent():
            child.next()

    def next(self) -> None:
        self.child.next()
        self._seek()

    def skip_to(self, docnum: int) -> None:
        self.child.skip_to(docnum)
        self._seek()

    def supports_block_quality(self) -> bool:
        return False

    def all_ids(self) -> Iterator[int]:
        while self.is_active():
            yield self.id()
            self.next()

    def copy(self) -> Any:
        raise NotImplementedError("an adjacency matcher cannot be copied")


class BigramPhrase(wq.Phrase):  # type: ignore[misc]  # whoosh is untyped
    """A phrase of bigram terms: all present, each one position after the last."""

    def matcher(self, searcher: Any, context: Any = None) -> Any:
        """Whoosh's hook; see :class:`_AdjacentMatcher`."""
        reader = searcher.reader()
        offsets: dict[str, list[int]] = {}
        for i, word in enumerate(self.words):
            if (self.fieldname, word) not in reader:
                return matching.NullMatcher()
            offsets.setdefault(word, []).append(i)
        # Rarest first: the intersection then skips most.
        words = sorted(offsets, key=lambda w: reader.doc_frequency(self.fieldname, w))
        leaves = [wq.Term(self.fieldname, w).matcher(searcher, context) for w in words]
        child = leaves[0]
        for leaf in leaves[1:]:
            child = matching.IntersectionMatcher(child, leaf)
        return _AdjacentMatcher(
            child,
            [(leaf, tuple(offsets[w])) for leaf, w in zip(leaves, words, strict=True)],
            boost=self.boost,
        )


def _text_in(field: str, text: str, boost: float) -> wq.Query:
    """``text`` in one bigram field: a term, a phrase of bigrams, or a lone character."""
    terms = split_terms(text)
    if len(terms) > 1:
        return BigramPhrase(field, terms, boost=boost)
    term = terms[0]
    if len(term) == 1 and is_cjk(term):
        # A lone character is indexed as a unigram only where it stands alone; elsewhere it
        # starts a bigram.
        return wq.Or([wq.Term(field, term), wq.Prefix(field, term)], boost=boost)
    return wq.Term(field, term, boost=boost)


def _anywhere(text: str, *, exact_code: bool) -> wq.Query:
    parts = [_text_in(field, text, FIELD_BOOSTS[field]) for field in TEXT_FIELDS]
    if exact_code:
        parts.append(wq.Term("archive_code", text, boost=_CODE_BOOST))
    return wq.Or(parts)


def compile_query(parsed: ParsedQuery) -> wq.Query:
    """The Whoosh query for ``parsed``, without any visibility filter (the searcher adds it).

    :param parsed: a query from :func:`parse_query`.
    """
    clauses: list[wq.Query] = []
    clauses.extend(_anywhere(term, exact_code=True) for term in parsed.terms)
    clauses.extend(_anywhere(phrase, exact_code=False) for phrase in parsed.phrases)
    clauses.extend(_text_in("student", s, FIELD_BOOSTS["student"]) for s in parsed.students)
    clauses.extend(_text_in("title", t, FIELD_BOOSTS["title"]) for t in parsed.titles)
    clauses.extend(wq.Prefix("archive_code", code) for code in parsed.codes)
    clauses.extend(wq.Term("business_type", t) for t in parsed.business_types)
    if parsed.year_from is not None or parsed.year_to is not None:
        clauses.append(wq.NumericRange("year", parsed.year_from, parsed.year_to))
    if len(clauses) == 1:
        return clauses[0]
    return wq.And(clauses)
