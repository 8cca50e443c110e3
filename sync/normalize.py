"""Normalised match keys: the same real deal spelled slightly differently gets the same key.

Keys are tuples of plain strings so a hash-join over millions of deals stays a dict lookup.
A deal missing any configured component gets no key at all: matching on a partial key would
pair deals that merely share a name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

from mapping.model import Deal, format_decimal

__all__ = [
    "COMPANY_SUFFIXES",
    "MATCH_KEYS",
    "MatchKey",
    "close_month",
    "match_key",
    "normalize_name",
]

COMPANY_SUFFIXES = frozenset(
    (
        *("inc", "incorporated", "llc", "ltd", "limited", "gmbh", "ag", "sa", "sas", "bv"),
        *("plc", "corp", "corporation", "co", "company"),
    )
)
_NOT_WORD = re.compile(r"[\W_]+")

MatchKey = tuple[str, ...]


def normalize_name(text: str) -> str:
    """Casefolded, accent-free, punctuation-free words without company suffixes.

    'Acme, Inc.' and 'ACME Inc' -> 'acme'. A name made only of suffixes ('The Company Co')
    keeps its words rather than collapsing to '' (which would match every such name).
    """
    folded = text.casefold()
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = _NOT_WORD.sub(" ", folded).split()
    kept = [w for w in words if w not in COMPANY_SUFFIXES]
    return " ".join(kept or words)


def close_month(deal: Deal) -> str | None:
    d = deal.close_date
    return f"{d.year:04d}-{d.month:02d}" if d is not None else None


def _name(deal: Deal) -> str | None:
    return normalize_name(deal.name) or None


def _owner(deal: Deal) -> str | None:
    return deal.owner_email.strip().lower() if deal.owner_email else None


def _close_date(deal: Deal) -> str | None:
    return deal.close_date.isoformat() if deal.close_date is not None else None


def _amount(deal: Deal) -> str | None:
    # Trailing zeros are noise (1500 == 1500.00); the currency is part of the amount.
    v = deal.value
    return f"{format_decimal(v.amount)} {v.currency}" if v is not None else None


def _account(deal: Deal) -> str | None:
    account = deal.extra.get("account")
    return normalize_name(str(account)) or None if account else None


MATCH_KEYS: dict[str, Callable[[Deal], str | None]] = {
    "name": _name,
    "owner_email": _owner,
    "close_month": close_month,
    "close_date": _close_date,
    "amount": _amount,
    "account": _account,
}


def match_key(deal: Deal, keys: Sequence[str]) -> MatchKey | None:
    """The deal's key for the configured components, or None when one of them is missing."""
    parts: list[str] = []
    for key in keys:
        part = MATCH_KEYS[key](deal)
        if part is None:
            return None
        parts.append(part)
    return tuple(parts)
