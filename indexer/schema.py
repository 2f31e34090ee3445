"""The Whoosh schema of the records index, and the weight of each field.

What is stored is only what a hit needs to name its record (``record_id``,
``archive_code``); titles, names and page text are indexed, never stored, because the index
is derived data on local disk and OCR text is record content kept encrypted in the vault.
``business_type`` (a term) and ``year`` (a column) are for filters and facets;
``security_class`` is the term the caller's visibility filter selects on.

The text fields of the records a rebuild indexes are not in Whoosh at all but in the
generation's bulk postings (:mod:`indexer.bulk`): written with numpy in one pass, several times
faster than Whoosh's per-posting writer. Records added later carry them in the fields below.
"""

from __future__ import annotations

from whoosh.columns import NumericColumn
from whoosh.fields import COLUMN, ID, Schema

from indexer.analyzer import BigramText

__all__ = ["FIELD_BOOSTS", "TEXT_FIELDS", "build_schema"]

#: The text fields a plain term is looked for in, with their BM25F query boosts: a term that
#: is a record's code, student or title says more about the record than one in its body.
FIELD_BOOSTS: dict[str, float] = {
    "code_text": 6.0,
    "student": 5.0,
    "title": 3.0,
    "location": 1.5,
    "body": 1.0,
}
TEXT_FIELDS: tuple[str, ...] = tuple(FIELD_BOOSTS)


def build_schema() -> Schema:
    """A fresh schema; the same one for every generation of the index."""
    return Schema(
        record_id=ID(stored=True, unique=True),
        # record_id again, as a column: the search maps bulk postings to docnums with it.
        rid=COLUMN(NumericColumn("q")),
        # 1 where the record's text postings are in the generation's bulk files (it came
        # with the rebuild), 0 where its text is in the Whoosh fields below (upserted).
        bulk=COLUMN(NumericColumn("B")),
        archive_code=ID(stored=True),
        code_text=BigramText(),
        title=BigramText(),
        student=BigramText(),
        # The whole name as one term: the lexicon "did you mean" corrects names from.
        name_key=ID(),
        location=BigramText(),
        body=BigramText(),
        business_type=ID(sortable=True),
        year=COLUMN(NumericColumn("i")),
        security_class=ID(),
    )
