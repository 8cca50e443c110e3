"""HubSpot companies by name: the company a copy crmsync creates is associated with.

A copy is associated with the company whose `name` is its account's (compared as
connectors/account_names.py says): exactly one such company, the copy is created associated
with it (in the create call: `associations`, type 5, HubSpot's "Primary" deal-to-company
type, which reads as the deal's account, and which HubSpot's lists and workflows use); none or
several, the copy is created with no company and says why. crmsync never makes a company:
HubSpot deduplicates companies by their domain, and a company of a name alone is the
duplicate its own tools flag.

The names a run's copies expect are looked up once each with the companies search
(`company_searches`): up to NAMES_PER_SEARCH names a search, `name IN (...)` in groups of
IN_VALUES. HubSpot matches IN against a string property's whole lowercased value, so the values
are sent lowercased; the whole names we compare are picked from what it returns. HubSpot keeps
a string property as typed, spaces around included (only non-string values were ever to be
trimmed), and IN compares the whole value: each name is sent also with a space before, after
and both (`typed_as`), so that a company a person named "Acme Corp " is found for "Acme Corp",
and one of them is not taken for the only one when both exist. A token without
crm.objects.companies.read is refused the search (403): each copy is created with no company,
saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from connectors.account_names import (
    AccountLookup,
    AccountMatch,
    AccountWords,
    bearing,
    matched,
    name_key,
)
from connectors.batches import chunks
from connectors.errors import PermissionDenied
from connectors.hubspot_companies import NO_SCOPE, PRIMARY_TYPE_ID
from connectors.hubspot_reads import IN_VALUES
from connectors.hubspot_wire import next_after

__all__ = [
    "NAMES_PER_SEARCH",
    "TYPED_AS",
    "WITHOUT_COMPANY",
    "WORDS",
    "Companies",
    "association",
    "company_calls",
    "company_searches",
    "typed_as",
]

# The values each name is sent as (`typed_as`): itself, and with a space before, after, both.
TYPED_AS = 4
# HubSpot's most filter groups in a search: one IN filter each (a group's filters are ANDed).
GROUPS = 5
# Names a search: five groups of IN_VALUES values, each name TYPED_AS of them (125), fewer than
# a page holds (200), so a search whose names each bear one company (or none) is one
# call; a name borne by several makes a page more only where they pass 200.
NAMES_PER_SEARCH = GROUPS * IN_VALUES // TYPED_AS
# What a copy associated with no company of its account's name gets instead, as its note says.
WITHOUT_COMPANY = "created without a company"
# A company's `name` is a single-line text property: HubSpot takes at most 65,536 characters
# in one (its knowledge base, "Property field types in HubSpot").
WORDS = AccountWords("company", "companies", WITHOUT_COMPANY, 65_536)

_log = logging.getLogger("crmsync.hubspot")

Filters = list[list[dict[str, Any]]]  # a search's filterGroups, each group's filters
# The connector's counted companies search: (filter groups, offset) -> one page's body.
Search = Callable[[Filters, int], Mapping[str, Any]]


def typed_as(name: str) -> list[str]:
    """The values a company named `name` (trimmed, lowercased) may hold as a person typed it:
    itself, with a space before, after and both; none longer than a company's name holds."""
    spaced = (name, f"{name} ", f" {name}", f" {name} ")
    return [value for value in spaced if len(value) <= WORDS.longest]


def company_searches(names: Iterable[str]) -> list[Filters]:
    """The filter groups of the searches that look up `names` (trimmed, each name once, none
    longer than a company's can be), each name `typed_as` people type it."""
    distinct: dict[str, str] = {}
    for name in names:
        if name.strip() and WORDS.fits(name):
            distinct.setdefault(name_key(name), name.strip().lower())
    return [
        [
            [{"propertyName": "name", "operator": "IN", "values": list(values)}]
            for values in chunks([v for n in chunk for v in typed_as(n)], IN_VALUES)
        ]
        for chunk in chunks(list(distinct.values()), NAMES_PER_SEARCH)
    ]


def company_calls(names: Iterable[str]) -> int:
    """The calls looking up `names` costs (a search each of `company_searches`, whose matches
    fit one page)."""
    return len(company_searches(names))


def association(company_id: str) -> dict[str, Any]:
    """A create's association of the deal with its company, as the deal's primary one."""
    kind = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": PRIMARY_TYPE_ID}
    return {"to": {"id": company_id}, "types": [kind]}


class Companies(AccountLookup):
    """Company name -> AccountMatch, each name looked up once per connector (a run)."""

    def __init__(self, system: str, search: Search) -> None:
        super().__init__(self._looked_up, WORDS)
        self._system, self._search = system, search

    def _looked_up(self, names: list[str]) -> dict[str, AccountMatch]:
        try:
            found = [c for groups in company_searches(names) for c in self._pages(groups)]
        except PermissionDenied:
            # The token may not read companies: no copy can be told its company, and none is
            # guessed (its deals were read without accounts too).
            match = WORDS.none(NO_SCOPE)
            _log.warning("%s: %s", self._system, match.note)
            return {name_key(n): match for n in names}
        named = [
            {"id": str(c["id"]), "name": (c.get("properties") or {}).get("name")} for c in found
        ]
        return {name_key(n): matched(n, bearing(n, named), WORDS) for n in names}

    def _pages(self, groups: Filters) -> list[Mapping[str, Any]]:
        found: list[Mapping[str, Any]] = []
        offset = 0
        while True:
            body = self._search(groups, offset)
            found += body.get("results") or []
            after = next_after(body)
            if not after:
                return found
            offset = int(after)
