"""The query language of the search box, and its translation into a Whoosh query.

::

    任欣强 转学                  two terms, both required (AND)
    "中荣获三等奖"               a phrase: all of its bigrams, none missing
    type:转学                    business type, exact
    year:2019  year:2019..2021   year, or an inclusive range (``2019..`` and ``..2021`` too)
    student:任欣强               a student's name, student number or class (班级)
    code:2023-新生入学           archive code, exact or prefix
    title:处分                   title only

A plain term or phrase is looked for in the archive code, the student's name, number and
class, the title, the paper location and the page text, each field on its own. A term of
several Chinese characters is matched as its bigrams, all in one field, in any order (the index
keeps no positions; overlapping bigrams make that nearly as precise). Unquoted, a term of four
bigrams or more also matches a field missing about a third of them, since page text is OCR
output with misread characters; quoted, every bigram is required. Evaluation is in
:mod:`indexer.engine`.

Nothing here logs: queries hold students' names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dangan.errors import InvalidInputError
from indexer.analyzer import split_terms

__all__ = ["ParsedQuery", "parse_query"]

MAX_QUERY_CHARS = 500
MAX_CLAUSES = 32
_FIELDS = frozenset({"type", "year", "student", "code", "title"})
_QUOTES = {'"': '"', "“": "”", "”": "”"}
_YEAR = re.compile(r"^(\d{4})?(\.\.)?(\d{4})?$")


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
