"""The fewest API calls each operation can cost per system: the yardstick of the API-cost bench.

Every bound counts what the CRM's API makes unavoidable: pages at the API's maximum page size,
writes at its maximum batch size, precondition re-reads at the size of one write batch, plus
the fixed metadata reads a run needs (pipelines, stages, owners, field description). The
inputs are record counts read from the sandbox itself, never from our connector.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import ceil

__all__ = ["apply_bound", "full_pull_bound", "incremental_pull_bound", "min_wall_seconds"]

# Salesforce: SOQL query + queryMore return at most 2,000 records per call.
SF_PAGE = 2000
# Salesforce: `Id IN (...)` lists are chunked at 300 ids so a GET URL stays under ~16 KB.
SF_IN_CHUNK = 300
# Salesforce: composite/sobjects updates take at most 200 records per call.
SF_BATCH = 200
# Salesforce metadata: OpportunityStage query, User query, Opportunity describe.
SF_METADATA = 3
# HubSpot: the CRM objects list pages at most 100 records per call.
HS_LIST_PAGE = 100
# HubSpot: the search endpoint (incremental reads) pages at most 200 records per call.
HS_SEARCH_PAGE = 200
# HubSpot: batch/read and batch/update take at most 100 records per call (companies' too).
HS_BATCH = 100
# HubSpot: the associations batch read (2026-09, as v4's) takes at most 1,000 deals per call.
HS_ASSOCIATIONS_BATCH = 1000
# HubSpot metadata: deal pipelines (with their stages), active owners and archived owners.
HS_METADATA = 3
# Pipedrive (API v2): /api/v2/deals and /api/v2/deals/archived page at most 500 per call.
PD_PAGE = 500
# Pipedrive: an `ids=` list (deals, organizations) takes at most 100 ids per call.
PD_IDS = 100
# Pipedrive: /api/v2/organizations lists at most 500 per call (the same 10 tokens as `ids=`).
PD_ORG_PAGE = 500
# Pipedrive: the records re-read and written per journaled batch (one PATCH per deal).
PD_WRITE_BATCH = 10
# Pipedrive metadata: /api/v2/pipelines, /api/v2/stages (one page each), /v1/users.
PD_METADATA = 3
# Pipedrive: a full pull lists the deal fields (/api/v2/dealFields, 500 a page: one) where the
# config names custom fields (external_ids, link_field), to refuse a key the account lacks:
# no deal read tells an undefined custom field from an empty one.
PD_FIELDS = 1
# An incremental pull's read of the accounts changed since its cursor (their renames), per CRM.
ACCOUNTS_READ = 1


def _pages(records: int, size: int, *, at_least: int = 1) -> int:
    """A list read costs one call even when it is empty (that is how it learns so)."""
    return max(at_least, ceil(records / size))


def full_pull_bound(system: str, counts: Mapping[str, int]) -> int:
    """`counts` from World.live_counts(): deals (live), deleted, history, owners, companies."""
    if system == "salesforce":
        # Opportunities, then their stage history (OpportunityHistory), each in 2,000s.
        return SF_METADATA + _pages(counts["deals"], SF_PAGE) + _pages(counts["history"], SF_PAGE)
    if system == "hubspot":
        # A deal's account is its company's name: the list brings each deal's companies, and
        # their names take a companies batch read per 100 companies (none when there are none).
        names = _pages(counts.get("companies", 0), HS_BATCH, at_least=0)
        return HS_METADATA + _pages(counts["deals"], HS_LIST_PAGE) + names
    # /deals leaves archived deals out: one more list, of /deals/archived (none here); both
    # lists again `updated_since` the read began (deals archived or unarchived meanwhile, one
    # page each); a v2 deal names its organization by id only: their names, from the listing
    # of every organization (500 a page) or 100 ids a call, whichever is fewer; the deal
    # fields. At 10k deals naming 880 of 880 organizations: 3 + 21 + 1 + 2 + min(2, 9) + 1 = 30
    # (10,128 live deals).
    named = _pages(counts.get("organizations", 0), PD_IDS, at_least=0)
    listed = _pages(counts.get("organizations_listed", 0), PD_ORG_PAGE, at_least=0)
    names = min(named, listed) if named else 0
    return PD_METADATA + _pages(counts["deals"], PD_PAGE) + 1 + 2 + names + PD_FIELDS


def incremental_pull_bound(system: str, changed: int, counts: Mapping[str, int]) -> int:
    """After `changed` deals of the system changed since the cursor (none deleted)."""
    # + ACCOUNTS_READ: renaming an account (Account, company, organization) modifies the
    # account, not its deals, so the changed deals never show it; one more read, of the
    # accounts changed since the cursor (one page: none of the bench's is), brings the new
    # names to the stored deals that name those accounts.
    if system == "salesforce":
        # Changed opportunities; the stage history of just those ids (IN chunks); and the
        # deletions since the cursor (one queryAll on IsDeleted); the Accounts changed since.
        changed_deals = _pages(changed, SF_PAGE) + _pages(changed, SF_IN_CHUNK) + 1
        return SF_METADATA + changed_deals + ACCOUNTS_READ
    if system == "hubspot":
        # Changed deals by search on hs_lastmodifieddate; deletions: the archived list has no
        # time filter in the API, so every archived deal is listed (100 per page).
        archived = _pages(counts["deleted"], HS_LIST_PAGE)
        # Search returns no associations: the changed deals' companies (2026-09 batch read), then
        # the names of at most that many companies (a run knows none yet).
        companies = _pages(changed, HS_ASSOCIATIONS_BATCH, at_least=0)
        names = _pages(min(changed, counts.get("companies", 0)), HS_BATCH, at_least=0)
        deals = _pages(changed, HS_SEARCH_PAGE) + archived + companies + names
        return HS_METADATA + deals + ACCOUNTS_READ  # a companies search on hs_lastmodifieddate
    # Both deal lists `updated_since` the cursor, deleted deals included (the deletions come
    # from the same read): /deals (500 a page) and /deals/archived (none here); the names of
    # the changed deals' organizations (a run knows none yet), 100 ids a call; the
    # organizations `updated_since` the cursor.
    names = _pages(min(changed, counts.get("organizations", 0)), PD_IDS, at_least=0)
    return PD_METADATA + _pages(changed, PD_PAGE) + 1 + names + ACCOUNTS_READ


def apply_bound(system: str, records: int) -> int:
    """Writing changes to `records` deals, each write batch re-read first (preconditions).

    The mapping contexts come from the pull of the same run: no metadata calls.
    """
    if records == 0:
        return 0
    if system == "salesforce":
        # One SOQL `Id IN` re-read per batch of 200 (under the 300-id chunk) + one composite.
        return 2 * ceil(records / SF_BATCH)
    if system == "hubspot":
        return 2 * ceil(records / HS_BATCH)  # batch/read + batch/update per 100
    # Pipedrive has no batch update: one PATCH per deal. Each journaled batch of 10 is re-read
    # in one `ids=` list call, without its deals' organization names (no check before a write
    # compares an account). At 1,000 changes: 1,000 + 100 = 1,100.
    return records + ceil(records / PD_WRITE_BATCH)


def min_wall_seconds(calls: int, limit: int, window: float, latency_s: float) -> float:
    """Rate-limited minimum for `calls` sequential calls under `limit` per rolling `window`.

    Each call starts once the one before it has answered (its latency) and no sooner than a
    window after the call `limit` places before it. So the calls left after the last wait
    still cost their latency each: HubSpot's 105 calls under 100 per 10 s take 10.25 s at 50 ms
    (5 calls after the wait), not the 10.0 s of the wait alone.
    """
    starts: list[float] = []
    for k in range(calls):
        start = starts[-1] + latency_s if starts else 0.0
        if k >= limit:
            start = max(start, starts[k - limit] + window)
        starts.append(start)
    return starts[-1] + latency_s if starts else 0.0
