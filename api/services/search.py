"""Searching the archive as one person: the index finds, the policy filters, the vault shows.

The index is handed the security classes the user may see and applies them inside the search,
so hidden records shape nothing the user gets back: not hits, totals, facets nor suggestions.
The catalog then loads the hits through the same policy (a second word, for an index that
lags a change of class), and the snippets are cut from the hits' OCR text, decrypted for the
page of results shown and never kept. Each search is audited with its counts, not its words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from api.services.pipeline import index_document, read_ocr_text
from api.services.runtime import Runtime
from catalog import (
    Action,
    RecordInfo,
    RecordStatus,
    Stage,
    UserInfo,
    audit_denied,
    get_record_by_id,
    is_allowed,
    record_event,
    records_in_stage,
    require,
    visible_classes,
    visible_records_by_id,
)
from dangan.errors import InvalidInputError, PermissionDeniedError
from indexer import Facet, IndexDoc, Snippet, make_snippets, parse_query

__all__ = ["SearchHit", "SearchPage", "rebuild_index", "search_records"]

MAX_PAGE_SIZE = 100
_YEAR = re.compile(r"^\d{4}(\.\.\d{4})?$")


@dataclass(frozen=True)
class SearchHit:
    record: RecordInfo
    score: float
    snippets: tuple[Snippet, ...]


@dataclass(frozen=True)
class SearchPage:
    """One page of results, everything in it already filtered for the person asking."""

    query: str
    total: int
    page: int
    page_size: int
    hits: tuple[SearchHit, ...]
    facets: dict[str, tuple[Facet, ...]]
    suggestion: str | None


def _query_text(query: str, business_type: str | None, year: str | None) -> str:
    parts = [query.strip()]
    if business_type:
        if any(c.isspace() or c == '"' for c in business_type):
            raise InvalidInputError("a business type has no spaces or quotes")
        parts.append(f"type:{business_type}")
    if year:
        if not _YEAR.match(year):
            raise InvalidInputError("year is YYYY or YYYY..YYYY")
        parts.append(f"year:{year}")
    return " ".join(p for p in parts if p)


def search_records(
    rt: Runtime,
    query: str,
    *,
    user: UserInfo,
    page: int = 1,
    page_size: int = 10,
    business_type: str | None = None,
    year: str | None = None,
    snippets: bool = True,
) -> SearchPage:
    """Search as ``user``: words, ``"phrases"``, ``type:``, ``year:2019..2021``, ``student:``,
    ``code:`` (see ``indexer.parse_query``), plus the filters given as arguments.

    :raises InvalidInputError: a malformed query, page or filter.
    :raises PermissionDeniedError: ``user`` may not search (audited).
    """
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInputError(f"page starts at 1; page size is 1 to {MAX_PAGE_SIZE}")
    try:
        require(user, Action.search)
    except PermissionDeniedError as exc:
        with rt.db.write() as session:
            audit_denied(session, user, Action.search, None, error=exc)
        raise
    text = _query_text(query, business_type, year)
    parsed = parse_query(text)
    classes = frozenset(c.value for c in visible_classes(user))
    found = rt.index.search(parsed, visible_classes=classes, page=page, page_size=page_size)
    with rt.db.read() as session:
        records = visible_records_by_id(session, (h.record_id for h in found.hits), user)
    hits: list[SearchHit] = []
    for h in found.hits:
        record = records.get(h.record_id)
        if record is None or record.status is RecordStatus.disposed:
            continue
        cut: tuple[Snippet, ...] = ()
        if snippets and is_allowed(user, Action.record_read_content, record.security_class):
            pages = read_ocr_text(rt, record.id, actor=user.name)
            cut = make_snippets(parsed, [p.text if p is not None else "" for p in pages])
        hits.append(SearchHit(record=record, score=h.score, snippets=cut))
    with rt.db.write() as session:
        record_event(
            session,
            actor=user.name,
            action=Action.search.value,
            detail={"total": found.total, "shown": len(hits), "page": page},
        )
    return SearchPage(
        query=text,
        total=found.total,
        page=page,
        page_size=page_size,
        hits=tuple(hits),
        facets=found.facets,
        suggestion=found.suggestion,
    )


def _documents(rt: Runtime, *, actor: str) -> Iterator[IndexDoc]:
    after = 0
    while True:
        with rt.db.read() as session:
            batch = records_in_stage(session, [Stage.indexing, Stage.done], after_id=after)
        if not batch:
            return
        for record_id, _code in batch:
            with rt.db.read() as session:
                record = get_record_by_id(session, record_id)
            yield index_document(rt, record, actor=actor)
        after = batch[-1][0]


def rebuild_index(rt: Runtime, *, actor: str) -> int:
    """Build the search index anew from the catalog and the OCR text in the vault, and swap
    it in whole (searches keep using the old one until then).

    Records still being read are left out: the pipeline indexes them when it gets there.

    :returns: the number of records indexed.
    """
    count = rt.index.rebuild(_documents(rt, actor=actor))
    with rt.db.write() as session:
        record_event(session, actor=actor, action="index.rebuild", detail={"records": count})
    return count
