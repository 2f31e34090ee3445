"""The Whoosh schema of the records index, and the weight of each field.

What is stored is only what a hit needs to name its record (``record_id``,
``archive_code``); titles, names and page text are indexed, never stored, because the index
is derived data on local disk and OCR text is record content kept encrypted in the vault.
``business_type`` and ``year`` are columns for facets; ``security_class`` is the term the
caller's visibility filter selects on.
"""

from __future__ import annotations

from whoosh.fields import ID, NUMERIC, Schema

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
        archive_code=ID(stored=True),
        code_text=BigramText(),
        title=BigramText(),
        student=BigramText(),
        # The whole name as one term: the lexicon "did you mean" corrects names from.
        name_key=ID(),
        location=BigramText(),
        body=BigramText(),
        business_type=ID(sortable=True),
        year=NUMERIC(numtype=int, bits=32, sortable=True),
        security_class=ID(),
    )
