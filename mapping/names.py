"""Names compared by their words, as `crmsync init` guesses from them: a native stage named
like a funnel stage, a pipeline named like a funnel."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["same_word", "words"]

# Shorter words are too often a part of an unrelated one ("won" in "wonder").
_OWN_WORD_MIN = 4


def words(text: str) -> str:
    """Lower-case words without accents: 'Négociation' is 'negociation', not 'n gociation'."""
    plain = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return " ".join(re.findall(r"[a-z0-9]+", plain))


def same_word(a: str, b: str) -> bool:
    """One word is the other with an ending: 'quote' and 'quoted', 'renewal' and 'renewals'."""
    short, long = sorted((a, b), key=len)
    return len(short) >= _OWN_WORD_MIN and long.startswith(short)
