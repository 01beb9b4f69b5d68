"""Folding, tokenising and Dutch stemming, shared by indexing and querying.

The index and the query parser must cut and normalise text in exactly the same way, or a word
that was said can never be found; so both call these functions and nothing else.

Stemming is Snowball's classic Dutch algorithm (``dutch_porter``), the one PostgreSQL's
``dutch`` text search configuration uses, so the SQLite index (which stores stems) and
PostgreSQL's ``to_tsvector('dutch', ...)`` agree on what a word is. Snowball 3's new ``dutch``
algorithm is not used: it stems ``werkdagen`` to ``werkdaag`` but ``werkdag`` to ``werkdag``.
"""

from __future__ import annotations

import functools
import threading
import unicodedata

import snowballstemmer

STEMMER = "dutch_porter"

# Snowball's Python stemmers keep their state on the instance: one per thread (Streamlit and
# the scheduler call in from several).
_local = threading.local()


def fold(text: str) -> str:
    """Case- and accent-insensitive form: ``Café`` and ``cafe`` fold alike.

    NFKD splits accents off (and turns compatibility forms such as ``ﬁ`` or ``²`` into plain
    letters and digits); casefold can bring back decomposable characters, hence the second NFKD
    before the combining marks are dropped.
    """
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def tokens(text: str) -> list[str]:
    """The folded words of ``text``: runs of letters and digits, everything else separates."""
    out: list[str] = []
    current: list[str] = []
    for ch in fold(text):
        if ch.isalnum():
            current.append(ch)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


@functools.lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """The Dutch stem of one folded token; a token with a digit is kept as it is.

    PostgreSQL sends words with digits (``06``, ``a1b``) to its ``simple`` dictionary, which
    does not stem; doing the same keeps the backends in agreement. Cached: the Snowball stemmer
    is pure Python, and a vocabulary repeats (measured: the index build went from 1.5 ms to
    0.1 ms per segment, a search's snippets from 39 ms to 7 ms).
    """
    if not token.isalpha():
        return token
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer(STEMMER)
    return str(stemmer.stemWord(token))


def stems(text: str) -> list[str]:
    """The stems of the folded words of ``text``, in order."""
    return [stem(token) for token in tokens(text)]


def index_text(text: str) -> str:
    """What the SQLite FTS5 column stores: the stems, space-separated, so matching is on stems."""
    return " ".join(stems(text))


def tsvector_text(text: str) -> str:
    """What to give PostgreSQL's ``to_tsvector('dutch', ...)``: the folded words, space-separated.

    PostgreSQL stems by itself but does not fold accents, and its own parser cuts text
    differently (``06-12345678`` gives ``06`` and ``-12345678``, ``1.5`` stays one word), so it
    gets the words already cut the way the query parser cuts them.
    """
    return " ".join(tokens(text))
