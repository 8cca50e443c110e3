"""A HubSpot deal's companies, named: what mapping/hubspot.py reads its account from.

Each deal the connector yields carries `companies`: `[{"id", "name", "primary"}]` (crmsync's
addition to the native record). With as few calls as the API allows:
- a full read asks the deals list for them (`associations=companies`: no call of its own). A
  list (v3's form, which the date versions keep) shows each association type apart: the
  primary company twice, as `deal_to_company` and `deal_to_company_unlabeled`, any other once,
  unlabeled. Past 100 entries a deal's list pages (`paging.next`); such a deal is read as a
  search result is (below).
- search (incremental reads) returns no associations: the changed deals' companies are read
  with the associations batch read (`hubspot_paths.DEAL_COMPANIES_READ`), 1,000 deals a call
  (v4's limit since 2025-02-10; a deal's companies past its answer's page are asked again from
  its own `after`). Its answer is v4's: types are ids, 5 the primary company (HUBSPOT_DEFINED;
  its label has changed, the id never does), 341 unlabeled. A deal with no company is an
  error of its 207 answer (NO_ASSOCIATIONS_FOUND), not an empty result.
- names: companies batch read, 100 ids a call, each company once per connector (a run).
- a token without crm.objects.companies.read: HubSpot refuses the company reads (403
  MISSING_SCOPES). What it answers a deals list asking for companies is documented nowhere:
  a 403 (the page is asked again without them), the deals without associations (a list whose
  first deal shows none asks once whether companies are readable), or their ids. Each way the
  deals are read without accounts, each saying why (`companies_unreadable`).
Deals are held back only until a call's worth of them is waiting, so the reads stay full.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from connectors.batches import chunks
from connectors.errors import PermissionDenied
from connectors.hubspot_wire import next_after

__all__ = [
    "ASSOCIATIONS",
    "NO_SCOPE",
    "CompanyNames",
    "links_from_v3",
    "links_from_v4",
]

ASSOCIATIONS = ["companies"]  # what the deals list is asked for
V3_PRIMARY = "deal_to_company"
PRIMARY_TYPE_ID = 5
# Inputs per associations read: v4's limit (changelog of 2025-02-10). HubSpot ends its support
# of the v4 APIs on 2027-03-30 and names the date versions their successor (developer
# changelog "Deprecating support for HubSpot v4 APIs", quoted in HubSpot/hubspot-api-python
# #495); their references document this read with v4's body and answer and state no limit of
# their own, so v4's is taken.
ASSOCIATIONS_BATCH, NAME_BATCH = 1000, 100

# Why no HubSpot deal has an account when the token may not read companies (a 403): the pull
# goes on without them (copies go to `create_org_id`, saying this) rather than failing.
NO_SCOPE = "HubSpot companies are not readable: grant crm.objects.companies.read to the app"
Links = dict[str, bool]  # company id -> primary?
Call = Callable[[str, Callable[..., Any], Any], Any]  # (operation, request, body) -> body


def links_from_v3(deal: Mapping[str, Any]) -> Links | None:
    """The companies of a deal read with `associations=companies`; None when HubSpot paged
    them (more than 100 entries), so they must be read whole."""
    page = (deal.get("associations") or {}).get("companies") or {}
    if (page.get("paging") or {}).get("next"):
        return None
    links: Links = {}
    for entry in page.get("results") or ():
        company = str(entry.get("id"))
        links[company] = links.get(company, False) or entry.get("type") == V3_PRIMARY
    return links


def links_from_v4(result: Mapping[str, Any]) -> Links:
    """The companies of one entry of an associations batch read, in v4's form, which the date
    versions keep (`toObjectId` is a number in v4's answers, a string in the references:
    either)."""
    links: Links = {}
    for target in result.get("to") or ():
        types = target.get("associationTypes") or ()
        primary = any(t.get("typeId") == PRIMARY_TYPE_ID for t in types)
        company = str(target.get("toObjectId"))
        links[company] = links.get(company, False) or primary
    return links


class _Waiting:
    """Deals held back for their companies' names, and those names' ids (in order)."""

    def __init__(self) -> None:
        self.deals: list[tuple[dict[str, Any], Links]] = []
        self.unknown: dict[str, None] = {}


class CompanyNames:
    """Names the companies of a stream of deals; company names are kept for the connector's
    life (a rename is read by the next connector, i.e. the next run)."""

    def __init__(self, call: Call, associations_read: Any, companies_read: Any) -> None:
        self._call = call
        self._associations_read = associations_read  # POST DEAL_COMPANIES_READ (a body)
        self._companies_read = companies_read  # POST the companies' batch/read (a body)
        self._names: dict[str, str | None] = {}
        self.unreadable: str | None = None  # NO_SCOPE once a company read was refused
        self._settled = False  # whether companies were seen or asked to be readable

    def refused(self) -> None:
        """A deals read asking for their companies was refused (403): none is readable."""
        self.unreadable = NO_SCOPE

    def _read(self, operation: str, request: Any, body: Any) -> Any:
        """One company read; None (and `unreadable` set) when the token lacks the scope."""
        if self.unreadable is not None:
            return None
        try:
            return self._call(operation, request, body)
        except PermissionDenied:
            self.unreadable = NO_SCOPE
            return None

    def readable(self) -> bool:
        """Whether the token may read companies: a batch read of one id no company has (an
        answer with a not-found error, or a 403 without the scope)."""
        self._settled = True
        self._read("read companies", self._companies_read, {"inputs": [{"id": "0"}]})
        return self.unreadable is None

    def named(self, deals: Iterable[dict[str, Any]], asked: bool) -> Iterator[dict[str, Any]]:
        """`deals` each with its `companies`. `asked`: the deals were read with
        `associations=companies` (a list); else (search) their companies are read here."""
        unlinked: list[dict[str, Any]] = []  # deals whose companies are still to be read
        waiting = _Waiting()  # deals whose companies' names are still to be read
        for deal in deals:
            links = links_from_v3(deal) if asked else None
            if asked and not self._settled:
                # HubSpot may leave companies out for want of the scope (nothing says whether
                # it does): a list whose first deal shows none asks once if they are readable.
                self._settled = True
                if not deal.get("associations"):
                    self.readable()
            if links is not None:
                yield from self._named([(deal, links)], waiting, final=False)
                continue
            unlinked.append(deal)
            if len(unlinked) == ASSOCIATIONS_BATCH:
                yield from self._named(self._linked(unlinked), waiting, final=False)
                unlinked = []
        yield from self._named(self._linked(unlinked), waiting, final=True)

    def _named(
        self, linked: list[tuple[dict[str, Any], Links]], waiting: _Waiting, final: bool
    ) -> Iterator[dict[str, Any]]:
        """The deals of `linked` and `waiting` whose companies are all named, reading names
        once a call's worth (or, `final`, any) is unknown; the others join `waiting`."""
        for deal, links in linked:
            unknown = [c for c in links if c not in self._names]
            if not unknown:
                yield self._with(deal, links)
            else:
                waiting.deals.append((deal, links))
                waiting.unknown.update(dict.fromkeys(unknown))
        if len(waiting.unknown) < NAME_BATCH and not final:
            return
        unknown = list(waiting.unknown)
        full = len(unknown) - (0 if final else len(unknown) % NAME_BATCH)
        for chunk in chunks(unknown[:full], NAME_BATCH):
            self._read_names(chunk)
        held, waiting.deals, waiting.unknown = waiting.deals, [], {}
        yield from self._named(held, waiting, final=False)

    def _with(self, deal: dict[str, Any], links: Links) -> dict[str, Any]:
        companies = [{"id": c, "name": self._names.get(c), "primary": p} for c, p in links.items()]
        if self.unreadable is not None:
            return {**deal, "companies": companies, "companies_unreadable": self.unreadable}
        return {**deal, "companies": companies}

    def _linked(self, deals: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Links]]:
        if not deals:
            return []
        found: dict[str, Links] = {}
        pending = [{"id": str(d["id"])} for d in deals]
        while pending:  # a deal's companies past a page are asked again from its `after`
            more = []
            for chunk in chunks(pending, ASSOCIATIONS_BATCH):
                body = self._read("read deal companies", self._associations_read, {"inputs": chunk})
                for result in (body or {}).get("results") or ():
                    deal_id = str((result.get("from") or {}).get("id"))
                    links = found.setdefault(deal_id, {})
                    for company, primary in links_from_v4(result).items():
                        links[company] = links.get(company, False) or primary
                    after = next_after(result)
                    if after:
                        more.append({"id": deal_id, "after": str(after)})
            pending = more
        return [(d, found.get(str(d["id"]), {})) for d in deals]

    def _read_names(self, ids: Sequence[str]) -> None:
        request = {"inputs": [{"id": i} for i in ids], "properties": ["name"]}
        body = self._read("read companies", self._companies_read, request) or {}
        for company in body.get("results") or ():
            name = str((company.get("properties") or {}).get("name") or "").strip()
            self._names[str(company["id"])] = name or None
        for company in ids:  # not found (deleted since): no name, and not asked again
            self._names.setdefault(company, None)
