"""The plain values that go into the index and come out of a search.

No record text is kept in these beyond what the caller hands in (``IndexDoc``) or what it
asked for (``Snippet``); a ``Hit`` names a record by id and archive code only, and the caller
loads the rest from the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from indexer.query import ParsedQuery

__all__ = ["Facet", "Hit", "IndexDoc", "SearchResults", "Snippet"]


@dataclass(frozen=True)
class IndexDoc:
    """One record as the index sees it.

    ``pages`` is the OCR text of each page; it is indexed but never stored in the index.
    ``security_class`` is an opaque string the caller's visibility filter names.
    """

    record_id: int
    archive_code: str
    title: str
    business_type: str
    year: int
    security_class: str
    student_name: str | None
    student_no: str | None
    paper_location: str | None
    pages: tuple[str, ...]
    student_class: str | None = None  # 班级; searched with the student's name and number
    former_codes: tuple[str, ...] = ()  # codes a key change took from it; searched as its code
    tags: tuple[str, ...] = ()  # non-key labels; searched with the title


@dataclass(frozen=True)
class Hit:
    """One matching record, best first."""

    record_id: int
    archive_code: str
    score: float


@dataclass(frozen=True)
class Facet:
    """How many visible matching records have ``value`` in a facet field."""

    value: str
    count: int


@dataclass(frozen=True)
class SearchResults:
    """One page of results; ``total`` and ``facets`` count visible matches only.

    ``facets`` has the keys ``"business_type"`` and ``"year"`` (empty when not asked for or
    when nothing matched); ``suggestion`` is a corrected query string that has visible hits,
    offered only when the query itself has none.
    """

    total: int
    hits: tuple[Hit, ...]
    facets: dict[str, tuple[Facet, ...]]
    suggestion: str | None
    query: ParsedQuery
    page: int = 1
    page_size: int = 10
    pages: int = field(default=0)


@dataclass(frozen=True)
class Snippet:
    """A window of one page around matches, for display.

    ``page`` is 1-based; ``highlights`` are ``(start, end)`` character offsets into ``text``.
    """

    page: int
    text: str
    highlights: tuple[tuple[int, int], ...]
