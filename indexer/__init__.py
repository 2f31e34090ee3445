"""indexer: the Whoosh full-text index of records, with a Chinese bigram analyzer.

It indexes what the caller hands it (:class:`IndexDoc`), searches under a visibility filter
the caller builds (a set of security classes), and makes snippets from page text the caller
decrypts. It stores only record ids and archive codes; it never imports the catalog, the
vault or the settings, and never logs queries or record text.
"""

from indexer.model import Facet, Hit, IndexDoc, SearchResults, Snippet
from indexer.query import ParsedQuery, parse_query
from indexer.search import SearchIndex
from indexer.snippets import highlight_spans, make_snippets

__all__ = [
    "Facet",
    "Hit",
    "IndexDoc",
    "ParsedQuery",
    "SearchIndex",
    "SearchResults",
    "Snippet",
    "highlight_spans",
    "make_snippets",
    "parse_query",
]
