"""Normalised match keys: the same real deal spelled slightly differently gets the same key.

Keys are tuples of plain strings so a hash-join over millions of deals stays a dict lookup.
A deal missing any configured component gets no key at all: matching on a partial key would
pair deals that merely share a name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import date
from operator import attrgetter

from mapping.model import Deal, format_decimal

__all__ = [
    "COMPANY_SUFFIXES",
    "MATCH_KEYS",
    "MatchKey",
    "close_month",
    "key_function",
    "match_key",
    "match_keys",
    "normalize_name",
]

COMPANY_SUFFIXES = frozenset(
    (
        *("inc", "incorporated", "llc", "ltd", "limited", "gmbh", "ag", "sa", "sas", "bv"),
        *("plc", "corp", "corporation", "co", "company"),
    )
)

MatchKey = tuple[str, ...]
_NAME, _CLOSE = attrgetter("name"), attrgetter("close_date")


# ASCII fast path: one C-level pass lower-cases and turns punctuation into spaces. Dots vanish
# instead, so that abbreviations stay words: 'S.A.' -> 'sa', 'Inc.' -> 'inc'.
_ASCII = str.maketrans(
    {c: (" " if not c.isalnum() else c.lower()) for c in map(chr, range(128)) if c.isprintable()}
    | {".": None}
)
_NOT_WORD = re.compile(r"[^\w.]+|_")


def normalize_name(text: str) -> str:
    """Casefolded, accent-free, punctuation-free words without company suffixes.

    'Acme, Inc.' and 'ACME Inc' -> 'acme'. A name made only of suffixes ('The Company Co')
    keeps its words rather than collapsing to '' (which would match every such name).
    """
    if text.isascii():
        words = text.translate(_ASCII).split()
    else:
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        folded = "".join(c for c in decomposed if not unicodedata.combining(c))
        words = _NOT_WORD.sub(" ", folded).replace(".", "").split()
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


def key_function(keys: Sequence[str]) -> Callable[[Deal], MatchKey | None]:
    """`match_key` for hot loops: names and months are normalised once per distinct value
    (the same deal usually carries the same name in every system)."""
    names: dict[str, str] = {}
    months: dict[date, str] = {}

    def name(deal: Deal) -> str | None:
        text = deal.name
        found = names.get(text)
        if found is None:
            found = names[text] = normalize_name(text)
        return found or None

    def month(deal: Deal) -> str | None:
        day = deal.close_date
        if day is None:
            return None
        found = months.get(day)
        if found is None:
            found = months[day] = f"{day.year:04d}-{day.month:02d}"
        return found

    fast = {"name": name, "close_month": month}
    getters = tuple(fast.get(k) or MATCH_KEYS[k] for k in keys)
    if len(getters) == 2:  # the common name + close-month shape, without a loop
        first, second = getters

        def pair(deal: Deal) -> MatchKey | None:
            a = first(deal)
            if a is None:
                return None
            b = second(deal)
            return None if b is None else (a, b)

        return pair

    def key(deal: Deal) -> MatchKey | None:
        parts = tuple(get(deal) for get in getters)
        return None if None in parts else parts  # type: ignore[return-value]

    return key


def match_key(deal: Deal, keys: Sequence[str]) -> MatchKey | None:
    """The deal's key for the configured components, or None when one of them is missing."""
    return key_function(keys)(deal)


def match_keys(deals: Sequence[Deal], keys: Sequence[str]) -> list[MatchKey | None]:
    """`match_key` of many deals at once. The default name + close-month shape runs in bulk,
    by C-level maps (at a million deals a Python step per deal costs more than the keys).
    Names are normalised as they come: a dict of distinct names costs more in cache misses
    than normalising the copies twice."""
    if tuple(keys) != ("name", "close_month"):
        return list(map(key_function(keys), deals))
    names = list(map(normalize_name, map(_NAME, deals)))
    days = list(map(_CLOSE, deals))
    months: dict[date | None, str | None] = {
        day: None if day is None else f"{day.year:04d}-{day.month:02d}"
        for day in dict.fromkeys(days)
    }
    pairs = list(zip(names, map(months.__getitem__, days), strict=True))
    if None in months or "" in names:  # a key missing a part is no key
        return [None if not name or month is None else (name, month) for name, month in pairs]
    return pairs  # type: ignore[return-value]  # no part is missing
