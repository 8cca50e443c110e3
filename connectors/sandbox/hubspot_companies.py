"""The HubSpot emulator's companies and deal -> company associations, in their wire formats.

A dataset's `hubspot.companies` holds company records as GET /crm/v3/objects/companies returns
them, and a deal its companies as GET /crm/v3/objects/deals?associations=companies does
(`associations.companies.results`: `{"id", "type"}`). Both are optional: datasets made before
companies load with none.

HubSpot shows one association in two vocabularies (API-NOTES §1):
- v3 (`?associations=companies` on the objects API): one entry per association type, so the
  primary company appears twice, as `deal_to_company` (primary) and
  `deal_to_company_unlabeled`; another company only as `deal_to_company_unlabeled`. At most
  100 entries per deal, then `paging.next.after`, as every association list pages since 2021.
- v4 (`POST /crm/v4/associations/deals/companies/batch/read`, <= 1,000 inputs: the changelog
  of 2025-02-10, which revised a first announcement of 100), and its date-versioned successors
  (`POST /crm/associations/{2026-03,2026-09}/deals/companies/batch/read`), which HubSpot
  documents with v4's body and answer (their own limit is not stated: v4's is kept). One
  entry per company, `toObjectId` a number, with its `associationTypes` (typeId 5 "Primary",
  341 unlabeled, label null); a deal with no company is an error of the 207 answer
  (`crm.associations.NO_ASSOCIATIONS_FOUND`), not an empty result. Paging is per deal (an
  `after` per input) with no documented page size, and hundreds come in one answer: the
  emulator answers each deal's companies whole.

A deal is created with its companies in the same call (`associations` of each input of a
create: `{"to": {"id"}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
"associationTypeId": 5 | 341}]}`; v4's type ids, which the type alone ties to companies):
5 makes the company the deal's primary one, and, as any association, unlabeled too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "ASSOCIATIONS_BATCH",
    "ASSOCIATIONS_READ",
    "ASSOCIATION_PAGE",
    "PRIMARY",
    "PRIMARY_TYPE_ID",
    "UNLABELED",
    "UNLABELED_TYPE_ID",
    "Associations",
    "created_associations",
    "none_found",
    "v3_associations",
    "v4_result",
]

PRIMARY, UNLABELED = "deal_to_company", "deal_to_company_unlabeled"
PRIMARY_TYPE_ID, UNLABELED_TYPE_ID = 5, 341
ASSOCIATION_PAGE = 100  # entries per deal in a v3 read, then paging
ASSOCIATIONS_BATCH = 1000  # inputs per associations batch read (v4's, since 2025-02-10)
# v4 and each date version (the emulator's API_VERSIONS): v4's support ends on 2027-03-30 (its
# changelog), but old configs and tests still speak it.
ASSOCIATIONS_READ = "/{fromObjectType}/{toObjectType}/batch/read"


class Associations:
    """Each deal's companies (deal id -> company id -> primary?), in the order associated."""

    def __init__(self, deals: Iterable[Mapping[str, Any]]) -> None:
        self.of: dict[str, dict[str, bool]] = {}
        for deal in deals:
            results = ((deal.get("associations") or {}).get("companies") or {}).get("results")
            for entry in results or ():
                companies = self.of.setdefault(str(deal["id"]), {})
                company = str(entry["id"])
                companies[company] = companies.get(company, False) or entry.get("type") == PRIMARY

    def set(self, deal_id: str, companies: Mapping[str, bool]) -> None:
        """The deal's companies from now on: at most one primary, as HubSpot allows."""
        if sum(companies.values()) > 1:
            raise ValueError("a deal has at most one primary company")
        if companies:
            self.of[str(deal_id)] = dict(companies)
        else:
            self.of.pop(str(deal_id), None)

    def v3_entries(self, deal_id: str) -> list[dict[str, str]]:
        entries = []
        for company, primary in (self.of.get(str(deal_id)) or {}).items():
            if primary:
                entries.append({"id": company, "type": PRIMARY})
            entries.append({"id": company, "type": UNLABELED})
        return entries


def v3_associations(
    entries: Sequence[Mapping[str, str]], deal_id: str, after: int = 0
) -> dict[str, Any] | None:
    """A deal's `associations` value in a v3 read: None (the key left out) for no company."""
    if not entries:
        return None
    page: dict[str, Any] = {"results": list(entries[after : after + ASSOCIATION_PAGE])}
    end = after + ASSOCIATION_PAGE
    if end < len(entries):
        link = f"https://api.hubapi.com/crm/v3/objects/deals/{deal_id}/associations/companies"
        page["paging"] = {"next": {"after": str(end), "link": f"{link}?after={end}"}}
    return {"companies": page}


def v4_result(deal_id: str, companies: Mapping[str, bool]) -> dict[str, Any]:
    """One deal's entry of a v4 (or 2026-03) batch read."""
    to = []
    for company, primary in companies.items():
        labels: list[tuple[int, str | None]] = [(PRIMARY_TYPE_ID, "Primary")] if primary else []
        labels.append((UNLABELED_TYPE_ID, None))
        types = [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": lb} for t, lb in labels]
        to.append({"toObjectId": int(company), "associationTypes": types})
    return {"from": {"id": str(deal_id)}, "to": to}


def none_found(deal_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The 207 errors of deals with no company, one per deal as HubSpot words them."""
    return [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
            "message": f"No company is associated with deal {deal_id}.",
            "context": {
                "fromObjectId": [str(deal_id)],
                "fromObjectType": ["deal"],
                "toObjectType": ["company"],
            },
            "errors": [],
            "links": {},
        }
        for deal_id in deal_ids
    ]


def created_associations(raw: object, is_company: Callable[[str], bool]) -> dict[str, bool]:
    """The companies (id -> primary?) a create's `associations` name; ValueError (HubSpot's
    400 VALIDATION_ERROR) for a malformed one, a type no deal-to-company type is (the
    emulator holds no other objects), a company `is_company` does not know, or two primary."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ValueError("'associations' must be a list.")
    companies: dict[str, bool] = {}
    for item in raw:
        target = item.get("to") if isinstance(item, Mapping) else None
        types = item.get("types") if isinstance(item, Mapping) else None
        if not isinstance(target, Mapping) or target.get("id") in (None, "") or not types:
            raise ValueError("Each association needs a 'to' id and its 'types'.")
        company = str(target["id"])
        ids = set()
        for kind in types:
            category = kind.get("associationCategory") if isinstance(kind, Mapping) else None
            type_id = kind.get("associationTypeId") if isinstance(kind, Mapping) else None
            if category != "HUBSPOT_DEFINED" or type_id not in (PRIMARY_TYPE_ID, UNLABELED_TYPE_ID):
                raise ValueError(f"Association type {category} {type_id} is not valid for deal.")
            ids.add(type_id)
        if not is_company(company):
            raise ValueError(f"Could not find company {company} to associate with.")
        companies[company] = companies.get(company, False) or PRIMARY_TYPE_ID in ids
    if sum(companies.values()) > 1:
        raise ValueError("A deal can have at most one primary company.")
    return companies
