"""Salesforce record ids as other systems hold them.

Salesforce's screens and reports show a record's 15-character id, which is case-sensitive; its
API answers with the 18-character form, the same id with a suffix that encodes the case of the
first 15 (each suffix character, one per 5 characters, is the bit pattern of their upper-case
letters in `_SUFFIX`), so that it may be compared without regard to case. A deal id a person
copied into another CRM is often the 15-character one, or an 18-character one a spreadsheet
changed the case of: both name the same record as the id the API gives.
"""

from __future__ import annotations

__all__ = ["case_safe_id"]

_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _suffix(base: str) -> str:
    return "".join(
        _SUFFIX[sum(1 << i for i, char in enumerate(base[at : at + 5]) if char.isupper())]
        for at in (0, 5, 10)
    )


def case_safe_id(value: str) -> str:
    """The 18-character id Salesforce's API gives for `value`, a 15-character id or an
    18-character one in any case; any other text (not an id) as it is."""
    if not (value.isascii() and value.isalnum()):
        return value
    if len(value) == 15:
        return value + _suffix(value)
    if len(value) != 18:
        return value
    suffix = value[15:].upper()
    if any(char not in _SUFFIX for char in suffix):
        return value
    chars = []
    for n, char in enumerate(value[:15]):
        upper = _SUFFIX.index(suffix[n // 5]) >> (n % 5) & 1
        if upper and not char.isalpha():
            return value  # the suffix does not fit the id: no Salesforce id, left alone
        chars.append(char.upper() if upper else char.lower())
    return "".join(chars) + suffix
