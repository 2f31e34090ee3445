"""Evaluating a parsed query with numpy over the index's postings.

Whoosh's matchers walk postings one document at a time in Python, which made words and
phrases matching a third of the records cost hundreds of milliseconds. Here every clause is
evaluated as dense arrays over the docnums of one searcher (a boolean "matches" and a float
score), read from posting blocks and bulk postings in C: a word matching every record costs a
few array operations. Totals and facets are exact; the caller's visibility mask is applied
before anything is counted, ranked or faceted.

Semantics (see :mod:`indexer.query` for the language):

- a term or phrase is looked for in each text field; in one field it matches when all its
  bigrams (and ASCII tokens) are in that field, in any order (no positions are indexed:
  overlapping bigrams make this nearly as precise as adjacency);
- an *unquoted* Chinese term of four bigrams or more tolerates OCR errors: it matches when
  :func:`min_match` of its bigrams are present; records with all of them score higher;
- scores are BM25 (k1 1.2; length-normalised in the body, b 0.75; not in the short fields),
  times each field's boost, summed over bigrams, fields and clauses.

Nothing here logs: queries and terms are record text.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from whoosh.codec.whoosh3 import W3LeafMatcher
from whoosh.columns import NumericColumn

from indexer.analyzer import is_cjk, split_terms
from indexer.bulk import BulkPostings
from indexer.query import ParsedQuery
from indexer.schema import FIELD_BOOSTS, TEXT_FIELDS

__all__ = ["Tables", "evaluate", "min_match"]

Mask = npt.NDArray[np.bool_]
Scores = npt.NDArray[np.float64]
Ids = npt.NDArray[np.int64]

_K1 = 1.2
_B_BODY = 0.75
#: An exact archive code typed as a plain term also matches the code field itself.
_CODE_BOOST = 8.0
#: Fewer bigrams than this in an unquoted term: every one is required.
_TOLERANT_FROM = 4


def min_match(bigrams: int) -> int:
    """How many of an unquoted Chinese term's distinct bigrams a field must hold.

    One wrong character in OCR output removes up to two bigrams; a term of four bigrams or
    more may miss about a third of them (4 bigrams may miss one, 5 to 7 two, 8 to 10 three),
    so a record with one misread character inside a term of six characters or more is still
    found, and ranks below the records with the whole term. Measured with
    ``bench/analyzer_compare.py`` (8 % noise: recall@10 0.663 strict, 0.858 missing a
    quarter, 0.899 missing a third; clean text 1.000 either way).

    :param bigrams: the term's distinct bigrams.
    """
    if bigrams < _TOLERANT_FROM:
        return bigrams
    return bigrams - max(1, (bigrams + 1) // 3)


def _block_postings(matcher: Any) -> tuple[Ids, npt.NDArray[np.float64]]:
    """All ids and weights of a leaf matcher, a posting block at a time.

    Reads Whoosh's W3 blocks directly (ids are delta-encoded, weights an array or a
    constant): the matcher's own per-posting calls cost microseconds each.
    """
    # The private attributes below are Whoosh's own block reader, used as it uses them.
    if not isinstance(matcher, W3LeafMatcher):
        ids: list[int] = []
        weights: list[float] = []
        while matcher.is_active():
            ids.append(matcher.id())
            weights.append(matcher.weight())
            matcher.next()
        return np.asarray(ids, dtype=np.int64), np.asarray(weights, dtype=np.float64)
    id_parts: list[Ids] = []
    weight_parts: list[npt.NDArray[np.float64]] = []
    while matcher.is_active():
        matcher._read_data()
        deltas, weights_data = matcher._data[0], matcher._data[1]
        count = matcher._blocklength
        id_parts.append(np.cumsum(np.asarray(deltas, dtype=np.int64)))
        if weights_data is None:
            weight_parts.append(np.ones(count, dtype=np.float64))
        elif isinstance(weights_data, float):
            weight_parts.append(np.full(count, weights_data, dtype=np.float64))
        else:
            weight_parts.append(np.asarray(weights_data, dtype=np.float64))
        matcher._next_block()
    if not id_parts:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    return np.concatenate(id_parts), np.concatenate(weight_parts)


def _numbers(leaves: list[tuple[Any, int]], field: str, size: int) -> npt.NDArray[np.int64]:
    """A numeric column's value for every docnum, read a segment at a time.

    Whoosh's column readers unpack one value per call; a ``NumericColumn`` is a run of
    big-endian numbers on disk (then defaults), which numpy reads in one go.
    """
    out = np.zeros(size, dtype=np.int64)
    for leaf, offset in leaves:
        count = int(leaf.doc_count_all())
        if not count or not leaf.has_column(field):
            continue
        column = leaf.column_reader(field, translate=False)
        if isinstance(column, NumericColumn.Reader):
            # Private attributes of Whoosh's reader: its layout, read as Whoosh reads it.
            width = column._fixedlen
            stored = min(column._count, count)
            raw = column._dbfile.get(column._basepos, stored * width)
            values = np.frombuffer(raw, dtype=">" + column._typecode)
            out[offset : offset + stored] = values
            out[offset + stored : offset + count] = column._default
        else:
            out[offset : offset + count] = list(column)
    return out


class Tables:
    """Per-searcher arrays: docnum columns, visibility masks, and posting access.

    Built once per searcher (a generation, refreshed after each commit) and cached by the
    caller; the bulk postings are per generation and shared.
    """

    def __init__(self, searcher: Any, bulk: BulkPostings | None) -> None:
        reader = searcher.reader()
        self.searcher = searcher
        self.bulk = bulk
        self.leaves: list[tuple[Any, int]] = list(reader.leaf_readers())
        size = int(reader.doc_count_all())
        self.size = size
        live = np.ones(size, dtype=np.bool_)
        for leaf, offset in self.leaves:
            if leaf.has_deletions():
                dead = np.fromiter(leaf.deleted_docs_set, dtype=np.int64) + offset
                live[dead] = False
        self.live = live
        self.live_count = max(1, int(live.sum()))
        if "rid" not in reader.schema:
            raise KeyError("rid")  # a generation of an older format; the caller says so
        rids = _numbers(self.leaves, "rid", size)
        in_bulk = _numbers(self.leaves, "bulk", size).astype(np.bool_) & live
        self.year = _numbers(self.leaves, "year", size)
        # Business types from their postings: a handful of terms, read in C.
        names = sorted(
            w.decode() if isinstance(w, bytes) else str(w) for w in reader.lexicon("business_type")
        )
        self.type_names = np.asarray(names, dtype=str)
        self.type_codes: Ids = np.zeros(size, dtype=np.int64)
        for code, name in enumerate(names):
            ids, _ = self.postings("business_type", name)
            self.type_codes[ids] = code
        self.body_length = np.zeros(size, dtype=np.float64)
        # Bulk document -> docnum (-1: deleted, or replaced by a later upsert).
        self.bulk_docnum: Ids = np.full(len(bulk.rids) if bulk is not None else 0, -1, np.int64)
        if bulk is not None and len(bulk.rids) and in_bulk.any():
            candidates = np.flatnonzero(in_bulk)
            by_rid = np.argsort(rids[candidates], kind="stable")
            sorted_rids = rids[candidates][by_rid]
            pos = np.searchsorted(sorted_rids, bulk.rids)
            pos_ok = np.minimum(pos, len(sorted_rids) - 1)
            found = (pos < len(sorted_rids)) & (sorted_rids[pos_ok] == bulk.rids)
            self.bulk_docnum = np.where(found, candidates[by_rid][pos_ok], -1).astype(np.int64)
            mapped = self.bulk_docnum >= 0
            self.body_length[self.bulk_docnum[mapped]] = bulk.lengths[mapped]
        for docnum in np.flatnonzero(live & ~in_bulk):
            self.body_length[docnum] = reader.doc_field_length(int(docnum), "body", 0)
        self.body_avg = max(1.0, float(self.body_length[live].sum()) / self.live_count)
        self._allowed: dict[frozenset[str], Mask] = {}

    # -- postings --------------------------------------------------------------------

    def postings(self, field: str, term: str) -> tuple[Ids, npt.NDArray[np.float64]]:
        """Docnums (live or not) and term frequencies of ``term`` in ``field``."""
        ids_parts: list[Ids] = []
        tf_parts: list[npt.NDArray[np.float64]] = []
        for leaf, offset in self.leaves:
            if (field, term) not in leaf:
                continue
            btext = leaf._text_to_bytes(field, term)
            fmt = leaf.schema[field].format
            matcher = leaf._terms.matcher(field, btext, fmt)
            ids, tfs = _block_postings(matcher)
            ids_parts.append(ids + offset)
            tf_parts.append(tfs)
        if self.bulk is not None and field in FIELD_BOOSTS:
            found = self.bulk.postings(field, term)
            if found is not None:
                docnums = self.bulk_docnum[found[0]]
                keep = docnums >= 0
                ids_parts.append(docnums[keep])
                tf_parts.append(np.asarray(found[1], dtype=np.float64)[keep])
        if not ids_parts:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        if len(ids_parts) == 1:
            return ids_parts[0], tf_parts[0]
        return np.concatenate(ids_parts), np.concatenate(tf_parts)

    def terms_with_prefix(self, field: str, prefix: str) -> list[str]:
        """Every term of ``field`` that starts with ``prefix``, in any segment or bulk."""
        found: set[str] = set()
        for leaf, _ in self.leaves:
            found.update(
                t.decode() if isinstance(t, bytes) else t for t in leaf.expand_prefix(field, prefix)
            )
        if self.bulk is not None and field in FIELD_BOOSTS:
            found.update(self.bulk.with_prefix(field, prefix))
        return sorted(found)

    def has_term(self, field: str, term: str) -> bool:
        """Whether ``term`` is in ``field`` anywhere (any class, live or not)."""
        if self.bulk is not None and self.bulk.has(field, term):
            return True
        return any((field, term) in leaf for leaf, _ in self.leaves)

    def allowed(self, classes: frozenset[str]) -> Mask:
        """Live documents of a visible class."""
        mask = self._allowed.get(classes)
        if mask is None:
            mask = np.zeros(self.size, dtype=np.bool_)
            for cls in classes:
                ids, _ = self.postings("security_class", cls)
                mask[ids] = True
            mask &= self.live
            self._allowed[classes] = mask
        return mask

    # -- scoring ---------------------------------------------------------------------

    def _bm25(self, field: str, ids: Ids, tfs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        df = len(ids)
        idf = math.log(1.0 + (self.live_count - df + 0.5) / (df + 0.5))
        if field == "body":
            norm = _K1 * ((1 - _B_BODY) + _B_BODY * self.body_length[ids] / self.body_avg)
        else:
            norm = np.full(len(ids), _K1)
        return np.asarray(idf * tfs * (_K1 + 1) / (tfs + norm), dtype=np.float64)

    def field_match(self, field: str, text: str, *, tolerant: bool) -> tuple[Mask, Scores]:
        """Documents whose ``field`` holds ``text`` (see the module docstring), and scores."""
        terms = list(dict.fromkeys(split_terms(text)))
        score = np.zeros(self.size, dtype=np.float64)
        if len(terms) == 1 and len(terms[0]) == 1 and is_cjk(terms[0]):
            # A lone character is indexed as a unigram only where it stands alone;
            # elsewhere it starts a bigram.
            terms = [terms[0], *self.terms_with_prefix(field, terms[0])]
            need = 1
        elif tolerant and len(terms) >= _TOLERANT_FROM and all(map(_is_bigram, terms)):
            need = min_match(len(terms))
        else:
            need = len(terms)
        found = [(ids, tfs) for ids, tfs in (self.postings(field, t) for t in terms) if len(ids)]
        if len(found) < need:
            # Cheap way out, taken by most fields of most terms (and by every "did you mean"
            # candidate that is not in this field).
            return np.zeros(self.size, dtype=np.bool_), score
        count = np.zeros(self.size, dtype=np.int16)
        for ids, tfs in found:
            count[ids] += 1
            score[ids] += self._bm25(field, ids, tfs)
        return count >= need, score

    def exact(self, field: str, term: str, boost: float) -> tuple[Mask, Scores]:
        """Documents with the untokenised ``term`` in an ID field."""
        mask = np.zeros(self.size, dtype=np.bool_)
        score = np.zeros(self.size, dtype=np.float64)
        ids, tfs = self.postings(field, term)
        if len(ids):
            mask[ids] = True
            score[ids] = self._bm25(field, ids, tfs) * boost
        return mask, score


def _is_bigram(term: str) -> bool:
    return len(term) == 2 and is_cjk(term[0])


def _anywhere(
    tables: Tables, text: str, *, exact_code: bool, tolerant: bool
) -> tuple[Mask, Scores]:
    mask = np.zeros(tables.size, dtype=np.bool_)
    score = np.zeros(tables.size, dtype=np.float64)
    for field in TEXT_FIELDS:
        found, points = tables.field_match(field, text, tolerant=tolerant)
        if found.any():
            mask |= found
            score += np.where(found, points * FIELD_BOOSTS[field], 0.0)
    if exact_code:
        found, points = tables.exact("archive_code", text, _CODE_BOOST)
        mask |= found
        score += points
    return mask, score


def _in_field(tables: Tables, field: str, text: str) -> tuple[Mask, Scores]:
    found, points = tables.field_match(field, text, tolerant=False)
    return found, np.where(found, points * FIELD_BOOSTS[field], 0.0)


def _code_prefix(tables: Tables, prefix: str) -> tuple[Mask, Scores]:
    mask = np.zeros(tables.size, dtype=np.bool_)
    for code in tables.terms_with_prefix("archive_code", prefix):
        ids, _ = tables.postings("archive_code", code)
        mask[ids] = True
    return mask, np.zeros(tables.size, dtype=np.float64)


def _clauses(tables: Tables, parsed: ParsedQuery) -> Iterator[tuple[Mask, Scores]]:
    """Each text clause's matches and scores, evaluated as the caller asks for the next."""
    for term in parsed.terms:
        yield _anywhere(tables, term, exact_code=True, tolerant=True)
    for phrase in parsed.phrases:
        yield _anywhere(tables, phrase, exact_code=False, tolerant=False)
    for student in parsed.students:
        yield _in_field(tables, "student", student)
    for title in parsed.titles:
        yield _in_field(tables, "title", title)
    for code in parsed.codes:
        yield _code_prefix(tables, code)


def evaluate(tables: Tables, parsed: ParsedQuery, allowed: Mask) -> tuple[Ids, Scores]:
    """The visible matching docnums (ascending) of ``parsed`` and their scores.

    :param tables: the searcher's tables.
    :param parsed: the query.
    :param allowed: the caller's visibility mask (from :meth:`Tables.allowed`).
    """
    mask = allowed.copy()
    for btype in parsed.business_types:
        hit = np.flatnonzero(tables.type_names == btype)
        if not len(hit):
            return np.empty(0, np.int64), np.empty(0, np.float64)
        mask &= tables.type_codes == int(hit[0])
    if parsed.year_from is not None:
        mask &= tables.year >= parsed.year_from
    if parsed.year_to is not None:
        mask &= tables.year <= parsed.year_to
    score = np.zeros(tables.size, dtype=np.float64)
    for found, points in _clauses(tables, parsed):
        mask &= found
        if not mask.any():
            break
        score += points
    ids = np.flatnonzero(mask).astype(np.int64)
    return ids, score[ids]


def top(ids: Ids, scores: Scores, limit: int) -> list[tuple[float, int]]:
    """The best ``limit`` as ``(score, docnum)``, best first; ties go to the lower docnum."""
    if len(ids) > limit:
        kth = np.partition(-scores, limit - 1)[limit - 1]
        keep = -scores <= kth
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:limit]
    return [(float(scores[i]), int(ids[i])) for i in order]
