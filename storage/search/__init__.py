"""Search over transcripts: the query language and the text normalisation shared with the index.

`parse` turns what a user typed into a `Query`; `to_fts5` and `to_tsquery` render it for the
SQLite and PostgreSQL indexes, which are filled with `index_text` and `tsvector_text`.
"""

from storage.search.query import (
    MAX_CHARS,
    MAX_ITEMS,
    Highlight,
    Phrase,
    Query,
    QueryError,
    Term,
    parse,
    to_fts5,
    to_tsquery,
)
from storage.search.text import fold, index_text, stem, stems, tokens, tsvector_text

__all__ = [
    "MAX_CHARS",
    "MAX_ITEMS",
    "Highlight",
    "Phrase",
    "Query",
    "QueryError",
    "Term",
    "fold",
    "index_text",
    "parse",
    "stem",
    "stems",
    "to_fts5",
    "to_tsquery",
    "tokens",
    "tsvector_text",
]
