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
from typing import Any

from mapping.model import Deal, format_decimal

__all__ = [
    "COMPANY_SUFFIXES",
    "MATCH_KEYS",
    "MatchKey",
    "close_month",
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
_NAME = attrgetter("name")


# ASCII fast path: one C-level pass over the bytes lower-cases and turns everything else into
# spaces (a 256-byte table: `str.translate` looks each character up in a dict, 3x slower). Dots
# vanish instead, so that abbreviations stay words: 'S.A.' -> 'sa', 'Inc.' -> 'inc'. A dot
# between digits separates numbers like a comma or a space: '1.5' is not '15', 'v1.0' not 'v10'.
_ASCII = bytes(ord(c.lower()) if c.isalnum() else 32 for c in map(chr, range(128))) + bytes(128)
_ASCII_SUFFIXES = frozenset(s.encode() for s in COMPANY_SUFFIXES)
_NOT_WORD = re.compile(r"[^\w.]+|_")
_DIGIT_DOT = re.compile(r"(?<=[0-9])\.(?=[0-9])")
_ASCII_DIGIT_DOT = re.compile(rb"(?<=[0-9])\.(?=[0-9])")


# The kana voiced sound marks decompose like accents but make another word: バス (bus), パス
# (pass) and ハス (lotus) are three names.
_VOICING = frozenset((0x3099, 0x309A))


class _MarkDropper(dict[int, "int | None"]):
    """A `str.translate` table that drops combining marks (accents once decomposed) and keeps
    every other character. It learns each character on first sight, so the translation runs
    in C instead of a Python step per character."""

    def __missing__(self, code: int) -> int | None:
        if len(self) >= 1 << 16:  # hostile text can name every code point: stay small
            self.clear()
        kept = None if unicodedata.combining(chr(code)) and code not in _VOICING else code
        self[code] = kept
        return kept


_NO_MARKS = _MarkDropper()


def normalize_name(text: str) -> str:
    """Casefolded, accent-free, punctuation-free words without company suffixes.

    'Acme, Inc.' and 'ACME Inc' -> 'acme'. A name made only of suffixes ('The Company Co')
    keeps its words rather than collapsing to '' (which would match every such name).
    """
    if text.isascii():
        raw = text.encode()
        if b"." in raw:
            raw = _ASCII_DIGIT_DOT.sub(b" ", raw)
        words = raw.translate(_ASCII, b".").split()
        kept = [w for w in words if w not in _ASCII_SUFFIXES]
        return b" ".join(kept or words).decode()
    name = _NON_ASCII.get(text)
    if name is None:  # not the same deal's name in the last CRM: folding costs several µs
        if len(_NON_ASCII) >= 1 << 17:
            _NON_ASCII.clear()
        name = _NON_ASCII[text] = folded_name(text)
    return name


def folded_name(text: str) -> str:
    """`normalize_name` for any text, by Unicode rules (the ASCII fast path's reference)."""
    folded = unicodedata.normalize("NFKD", text.casefold()).translate(_NO_MARKS)
    if "\u3099" in folded or "\u309a" in folded:  # back onto their kana: no word characters
        folded = unicodedata.normalize("NFC", folded)
    words = _NOT_WORD.sub(" ", _DIGIT_DOT.sub(" ", folded)).replace(".", "").split()
    kept = [w for w in words if w not in COMPANY_SUFFIXES]
    return " ".join(kept or words)


_NON_ASCII: dict[str, str] = {}  # recent non-ASCII names, normalised


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _owner_key(owner: str) -> str | None:
    return owner.strip().lower() or None  # a blank owner is no owner


def close_month(deal: Deal) -> str | None:
    return _month(deal.close_date) if deal.close_date is not None else None


def _name(deal: Deal) -> str | None:
    return normalize_name(deal.name) or None


def _owner(deal: Deal) -> str | None:
    return _owner_key(deal.owner_email) if deal.owner_email else None


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
    parts = tuple(MATCH_KEYS[component](deal) for component in keys)
    return None if None in parts else parts  # type: ignore[return-value]


def match_keys(deals: Sequence[Deal], keys: Sequence[str]) -> list[MatchKey | None]:
    """`match_key` of many deals at once, a column per component built by C-level maps (at a
    million deals a Python step per deal costs more than the keys)."""
    columns = [_column(component, deals) for component in keys]
    rows: list[Any] = list(zip(*columns, strict=True))
    if any(None in column or "" in column for column in columns):
        return [None if None in row or "" in row else row for row in rows]
    return rows


_REPEATING: dict[str, tuple[Callable[[Deal], Any], Callable[[Any], str | None]]] = {
    "close_month": (attrgetter("close_date"), _month),
    "owner_email": (attrgetter("owner_email"), _owner_key),
}


def _column(component: str, deals: Sequence[Deal]) -> list[str | None]:
    """One key component of every deal; None or "" where the deal lacks it."""
    if component == "name":
        return list(map(normalize_name, map(_NAME, deals)))
    if component in _REPEATING:
        read, derive = _REPEATING[component]
        values = list(map(read, deals))
        derived = {v: derive(v) if v else None for v in dict.fromkeys(values)}
        return list(map(derived.__getitem__, values))
    return list(map(MATCH_KEYS[component], deals))
