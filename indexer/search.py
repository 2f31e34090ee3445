"""Searching the index under the caller's visibility filter.

The caller (the search service, from the catalog's policy) says which security classes the
user may see; this module never decides that, it only applies it, as a mask over docnums
taken before anything else (:func:`indexer.engine.evaluate`): a record of another class is
never ranked, counted, faceted or used to suggest a correction. ``SearchIndex`` keeps one
searcher open and refreshes it when the index changes, with the per-searcher tables
(documents of each class, facet columns, :class:`indexer.engine.Tables`) it needs to answer
in a few milliseconds on 100,000 records.

Nothing here logs queries or record text.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from whoosh import index as windex

from dangan.errors import InvalidInputError, StoreUnavailableError
from indexer.analyzer import is_cjk
from indexer.bulk import BulkPostings
from indexer.engine import Ids, Mask, Tables, evaluate, top
from indexer.model import Facet, Hit, IndexDoc, SearchResults
from indexer.query import ParsedQuery, parse_query
from indexer.writer import current_generation, delete_docs, rebuild_index, upsert_docs

__all__ = ["MAX_PAGE_SIZE", "SearchIndex"]

MAX_PAGE_SIZE = 100
MAX_RESULT_WINDOW = 10_000
_SUGGEST_CANDIDATES = 50


class _View:
    """One open searcher and the tables derived from it; replaced when the index changes."""

    def __init__(self, generation: Path, searcher: Any, bulk: BulkPostings | None) -> None:
        self.generation = generation
        self.searcher = searcher
        self.tables = Tables(searcher, bulk)
        self._names: _Names | None = None

    @property
    def names(self) -> _Names:
        """Every name in the index (any class), built on the first "did you mean"."""
        if self._names is None:
            words = self.searcher.reader().lexicon("name_key")
            self._names = _Names(w.decode() if isinstance(w, bytes) else w for w in words)
        return self._names


class _Names:
    """Names one edit away from a word, by lookup tables instead of Whoosh's automaton.

    Whoosh's corrector walks the lexicon in Python per suggestion (~50 ms on 20,000
    records); these tables cost that once per searcher and microseconds per lookup.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = set(names)
        # "张*伟" -> names that differ from it at the star; "张伟" -> names with one more char.
        self.replaced: dict[str, set[str]] = {}
        self.shorter: dict[str, set[str]] = {}
        for name in self.names:
            for i in range(len(name)):
                self.replaced.setdefault(f"{name[:i]}\0{name[i + 1 :]}", set()).add(name)
                self.shorter.setdefault(name[:i] + name[i + 1 :], set()).add(name)

    def near(self, word: str) -> set[str]:
        """Names one replacement, insertion, deletion or swap from ``word``."""
        found = set(self.shorter.get(word, ()))
        for i in range(len(word)):
            found.update(self.replaced.get(f"{word[:i]}\0{word[i + 1 :]}", ()))
            if word[:i] + word[i + 1 :] in self.names:
                found.add(word[:i] + word[i + 1 :])
            if i + 1 < len(word):
                swapped = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
                if swapped in self.names:
                    found.add(swapped)
        found.discard(word)
        return found


class SearchIndex:
    """The records index in one directory; see :mod:`indexer.writer` for its layout.

    Safe to share between threads (searches are serialised on one searcher) and between
    processes (writes take Whoosh's lock).
    """

    def __init__(self, path: Path, *, lock_timeout: float = 30.0, rebuild_procs: int = 1) -> None:
        """Use :meth:`open`.

        :param path: the index directory.
        :param lock_timeout: seconds a write waits for another writer before giving up.
        :param rebuild_procs: writer processes for :meth:`rebuild`.
        """
        self.path = path
        self.lock_timeout = lock_timeout
        self.rebuild_procs = rebuild_procs
        self._lock = threading.Lock()
        self._view: _View | None = None
        self._bulk: BulkPostings | None = None

    @classmethod
    def open(cls, path: Path, *, lock_timeout: float = 30.0, rebuild_procs: int = 1) -> SearchIndex:
        """Open the index at ``path``, creating an empty one if there is none.

        :param path: the index directory (local disk; derived data).
        :param lock_timeout: seconds a write waits for another writer before giving up.
        :param rebuild_procs: writer processes for :meth:`rebuild`.
        :raises StoreUnavailableError: the directory cannot be created or read.
        """
        current_generation(path)
        return cls(path, lock_timeout=lock_timeout, rebuild_procs=rebuild_procs)

    def close(self) -> None:
        """Close the open searcher; the next search opens a new one."""
        with self._lock:
            if self._view is not None:
                self._view.searcher.close()
                self._view = None

    # -- writing -------------------------------------------------------------------------

    def add(self, docs: Iterable[IndexDoc]) -> int:
        """Add or replace records, matched on ``record_id``, in one commit.

        :param docs: the records; if one id comes twice, the last wins.
        :raises StoreUnavailableError: another writer held the lock past ``lock_timeout``.
        """
        return upsert_docs(self.path, docs, timeout=self.lock_timeout)

    def delete(self, record_ids: Iterable[int]) -> int:
        """Remove records; returns how many were in the index.

        :param record_ids: the ids; unknown ones are ignored.
        :raises StoreUnavailableError: another writer held the lock past ``lock_timeout``.
        """
        return delete_docs(self.path, record_ids, timeout=self.lock_timeout)

    def rebuild(self, docs: Iterable[IndexDoc]) -> int:
        """Index ``docs`` into a fresh generation and swap it in atomically.

        Searches keep answering from the old generation until the swap; writes wait for the
        rebuild (and give up after ``lock_timeout``).

        :param docs: every record, each id once, streamed.
        :raises InvalidInputError: an id came twice; the old index stays in use.
        :raises StoreUnavailableError: another writer held the lock past ``lock_timeout``.
        """
        return rebuild_index(self.path, docs, timeout=self.lock_timeout, procs=self.rebuild_procs)

    # -- reading -------------------------------------------------------------------------

    def _fresh_view(self) -> _View:
        """The open view, refreshed if a commit or a rebuild happened since."""
        generation = current_generation(self.path)
        view = self._view
        try:
            if view is None or view.generation != generation:
                if view is not None:
                    view.searcher.close()
                ix = windex.open_dir(str(generation))
                self._bulk = BulkPostings.load(generation)
                view = _View(generation, ix.searcher(), self._bulk)
            elif not view.searcher.up_to_date():
                # Not Searcher.refresh(): it reuses the reader of a segment whose deletions
                # changed, and a deleted or replaced record would still match.
                view.searcher.close()
                ix = windex.open_dir(str(generation))
                view = _View(generation, ix.searcher(), self._bulk)
        except (OSError, ValueError, windex.IndexError) as exc:
            self._view = None
            raise StoreUnavailableError("search index unreadable") from exc
        except (KeyError, NotImplementedError) as exc:
            # A generation written before the rid/bulk columns: searchable only once rebuilt.
            self._view = None
            raise StoreUnavailableError(
                "search index is in an older format; rebuild it (dangan index rebuild)"
            ) from exc
        self._view = view
        return view

    def doc_count(self) -> int:
        """How many records the index holds, of every class (for operators, not users)."""
        with self._lock:
            return int(self._fresh_view().searcher.doc_count())

    def search(
        self,
        query: str | ParsedQuery,
        *,
        visible_classes: frozenset[str],
        page: int = 1,
        page_size: int = 10,
        facets: bool = True,
    ) -> SearchResults:
        """Find records, best first, among those of the visible security classes only.

        :param query: the search box's text, or a query from :func:`parse_query`.
        :param visible_classes: the security classes this user may see (from the policy).
        :param page: 1-based page number.
        :param page_size: hits per page, at most :data:`MAX_PAGE_SIZE`.
        :param facets: whether to count matches per business type and year.
        :raises InvalidInputError: bad query syntax, or a page out of range.
        :raises StoreUnavailableError: the index cannot be read.
        """
        parsed = parse_query(query) if isinstance(query, str) else query
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInputError(f"page must be >= 1 and page_size 1..{MAX_PAGE_SIZE}")
        if page * page_size > MAX_RESULT_WINDOW:
            raise InvalidInputError(f"results beyond the first {MAX_RESULT_WINDOW} are not shown")
        with self._lock:
            view = self._fresh_view()
            allowed = view.tables.allowed(frozenset(visible_classes))
            matched, scores = evaluate(view.tables, parsed, allowed)
            best = top(matched, scores, page * page_size)
            shown = best[(page - 1) * page_size : page * page_size]
            hits = tuple(_hit(view.searcher, docnum, score) for score, docnum in shown)
            facet_counts: dict[str, tuple[Facet, ...]] = {}
            if facets and len(matched):
                facet_counts = _facets(view.tables, matched)
            suggestion = None
            if not len(matched):
                suggestion = _suggest(view, parsed, allowed)
        total = len(matched)
        return SearchResults(
            total=total,
            hits=hits,
            facets=facet_counts,
            suggestion=suggestion,
            query=parsed,
            page=page,
            page_size=page_size,
            pages=math.ceil(total / page_size),
        )


def _hit(searcher: Any, docnum: int, score: float) -> Hit:
    stored = searcher.stored_fields(docnum)
    return Hit(record_id=int(stored["record_id"]), archive_code=stored["archive_code"], score=score)


def _facets(tables: Tables, matched: Ids) -> dict[str, tuple[Facet, ...]]:
    """Counts per business type (most first) and per year (newest first) of ``matched``."""
    type_counts = np.bincount(tables.type_codes[matched], minlength=len(tables.type_names))
    by_type = sorted(
        ((str(tables.type_names[i]), int(n)) for i, n in enumerate(type_counts) if n),
        key=lambda kv: (-kv[1], kv[0]),
    )
    years, year_counts = np.unique(tables.year[matched], return_counts=True)
    return {
        "business_type": tuple(Facet(value=v, count=n) for v, n in by_type),
        "year": tuple(
            Facet(value=str(int(y)), count=int(n))
            for y, n in sorted(zip(years, year_counts, strict=True), reverse=True)
        ),
    }


_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def _one_edit(word: str) -> set[str]:
    """Every ASCII word one edit (delete, replace, insert, swap) from ``word``."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out.update(a + c + b[1:] for a, b in splits if b for c in _ALPHABET)
    out.update(a + c + b for a, b in splits for c in _ALPHABET)
    out.update(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1)
    out.discard(word)
    return out


def _candidates(view: _View, term: str) -> list[str]:
    """Index words one edit from ``term`` that could replace it, from the whole lexicon.

    Which candidate is offered is decided by visible hits alone (see :func:`_suggest`).
    """
    if term.isascii() and term.isalnum():
        field = "student" if term.isdigit() else "body"
        word = term.lower()
        found = [c for c in sorted(_one_edit(word)) if view.tables.has_term(field, c)]
        return found[:_SUGGEST_CANDIDATES]
    if 2 <= len(term) <= 4 and all(map(is_cjk, term)):
        # A Chinese name typed with a wrong character.
        return sorted(view.names.near(term))[:_SUGGEST_CANDIDATES]
    return []


def _suggest(view: _View, parsed: ParsedQuery, allowed: Mask) -> str | None:
    """A query one corrected word away that has visible hits, or ``None``.

    Candidates come from the index's lexicon, which knows every class; each is tried under the
    same visibility filter, and the one with the most visible hits wins, so a record the user
    cannot see never decides what is offered.
    """
    best: tuple[int, str] | None = None
    for kind, words in (("terms", parsed.terms), ("students", parsed.students)):
        for i, word in enumerate(words):
            for candidate in _candidates(view, word):
                replaced = (*words[:i], candidate, *words[i + 1 :])
                text = parsed.text.replace(word, candidate, 1)
                if kind == "terms":
                    alternative = dataclasses.replace(parsed, text=text, terms=replaced)
                else:
                    alternative = dataclasses.replace(parsed, text=text, students=replaced)
                count = len(evaluate(view.tables, alternative, allowed)[0])
                if count and (best is None or (-count, text) < (-best[0], best[1])):
                    best = (count, text)
    return best[1] if best else None
