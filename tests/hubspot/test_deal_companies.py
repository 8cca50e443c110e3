"""A HubSpot deal's account is its company's name: the connector reads each deal's companies
and their names through hubspot-api-client with the fewest calls the API allows, against the
sandbox over HTTP (a full read asks the deals list for them; an incremental one reads the
changed deals' companies, 1,000 a call; names 100 a call, each company once)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.hubspot import HubSpotConnector
from connectors.hubspot_companies import NO_SCOPE, links_from_v4
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox
from mapping.hubspot import account_from_companies

# The deals' companies batch read: v4 until HubSpot's end of v4 support (2027-03-30), then
# its date-versioned successor (`/__sandbox/stats` keys are "METHOD /path/template").
V4_READ = "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read"
DATED_READ = "POST /crm/associations/2026-09/{fromObjectType}/{toObjectType}/batch/read"


def _store(sandbox: Sandbox) -> Any:
    return sandbox.servers["hubspot"].emulator.store


def _requests(sandbox: Sandbox) -> dict[str, int]:
    return dict(sandbox.servers["hubspot"].stats.snapshot()["requests"])


def _clear(sandbox: Sandbox) -> None:
    sandbox.servers["hubspot"].stats.clear()


def _name(store: Any, company: str) -> str:
    return str(store.companies[company]["properties"]["name"])


def _account(deal: dict[str, Any]) -> str | None:
    return account_from_companies(deal.get("companies"))[0]


def test_a_full_read_names_each_deals_primary_company_with_one_names_call_per_100_companies(
    sandbox: Sandbox, connector: HubSpotConnector
) -> None:
    store = _store(sandbox)
    deals = list(connector.deals())
    assert len(deals) == len(store.live)
    for deal in deals:
        [(company, primary)] = store.companies_of.of[deal["id"]].items()
        assert primary and _account(deal) == _name(store, company)
    requests = _requests(sandbox)
    companies = {c for links in store.companies_of.of.values() for c in links}
    names = requests["POST /crm/objects/2026-09/companies/batch/read"]
    assert names == math.ceil(len(companies) / 100)
    assert requests["GET /crm/objects/2026-09/deals"] == math.ceil(len(deals) / 100)  # as before
    assert V4_READ not in requests and DATED_READ not in requests


def test_an_incremental_read_sees_a_deal_moved_to_another_company(
    sandbox: Sandbox, make_connector: Callable[..., HubSpotConnector]
) -> None:
    store = _store(sandbox)
    deal_id = str(store.order[3])
    [old] = store.companies_of.of[deal_id]
    new = next(c for c in store.companies if c != old)
    since = datetime.now(UTC) - timedelta(seconds=1)
    store.associate(deal_id, {new: True})
    _clear(sandbox)
    [deal] = list(make_connector().deals(since))
    assert deal["id"] == deal_id
    assert _account(deal) == _name(store, new)
    assert _requests(sandbox) == {
        "GET /crm/pipelines/2026-09/deals": 1,
        "POST /crm/objects/2026-09/deals/search": 1,
        DATED_READ: 1,
        "POST /crm/objects/2026-09/companies/batch/read": 1,
    }


def test_a_deal_moved_to_another_company_without_a_stamp_is_read_by_the_next_full_read(
    sandbox: Sandbox, make_connector: Callable[..., HubSpotConnector]
) -> None:
    """Whether HubSpot stamps a deal's hs_lastmodifieddate when its companies change is not
    documented: where it does not, the incremental search does not return the deal (its old
    account stays), and a full read (`--full`) files it by the new company."""
    store = _store(sandbox)
    deal_id = str(store.order[3])
    [old] = store.companies_of.of[deal_id]
    new = next(c for c in store.companies if c != old)
    since = datetime.now(UTC) - timedelta(seconds=1)
    store.associate(deal_id, {new: True}, touch=False)
    assert [d["id"] for d in make_connector().deals(since)] == []
    [deal] = [d for d in make_connector().deals() if d["id"] == deal_id]
    assert _account(deal) == _name(store, new)


def test_several_companies_none_primary_give_no_account_and_say_why(
    sandbox: Sandbox, connector: HubSpotConnector
) -> None:
    store = _store(sandbox)
    deal_id = str(store.order[0])
    first, second = list(store.companies)[:2]
    store.associate(deal_id, {first: False, second: False})
    deal = next(d for d in connector.deals() if d["id"] == deal_id)
    account, why = account_from_companies(deal["companies"])
    assert account is None
    assert why is not None and "2 companies" in why and "none primary" in why
    assert _name(store, first) in why and _name(store, second) in why


def test_a_deal_with_more_company_entries_than_a_page_is_read_whole(
    sandbox: Sandbox, connector: HubSpotConnector
) -> None:
    """HubSpot pages a deal's association entries past 100 (the primary company counts twice):
    the primary one may be past the first page, so that deal's companies are read whole."""
    store = _store(sandbox)
    deal_id = str(store.order[0])
    many = list(store.companies)[:120]
    store.associate(deal_id, {c: c == many[-1] for c in many})
    deal = next(d for d in connector.deals() if d["id"] == deal_id)
    assert _account(deal) == _name(store, many[-1])
    assert len(deal["companies"]) == 120
    assert _requests(sandbox)[DATED_READ] == 1


def test_a_company_name_is_read_once_per_run(sandbox: Sandbox, connector: HubSpotConnector) -> None:
    store = _store(sandbox)
    one, two = (str(i) for i in store.order[:2])
    [company] = store.companies_of.of[one]
    store.associate(two, {company: True})
    list(connector.deals())
    _clear(sandbox)
    since = datetime.now(UTC)
    store.associate(one, {company: True})  # touched: read again by the next incremental read
    [deal] = list(connector.deals(since))
    assert _account(deal) == _name(store, company)
    assert "POST /crm/objects/2026-09/companies/batch/read" not in _requests(sandbox)


def test_a_deal_without_companies_has_no_account(
    sandbox: Sandbox, connector: HubSpotConnector
) -> None:
    store = _store(sandbox)
    deal_id = str(store.order[0])
    store.associate(deal_id, {})
    deal = next(d for d in connector.deals() if d["id"] == deal_id)
    assert deal["companies"] == []
    assert account_from_companies(deal["companies"]) == (None, None)


def test_a_deals_companies_paged_in_the_batch_read_are_read_to_the_last_page(
    sandbox: Sandbox, connector: HubSpotConnector
) -> None:
    """The associations batch read pages each deal's companies on its own (`after` per input):
    a primary company on the last page is still the account."""
    store = _store(sandbox)
    deal_id = str(store.order[0])
    five = list(store.companies)[:5]
    since = datetime.now(UTC)
    store.associate(deal_id, {c: c == five[-1] for c in five})
    sandbox.servers["hubspot"].emulator.associations_page = 2
    [deal] = list(connector.deals(since))
    assert len(deal["companies"]) == 5
    assert _account(deal) == _name(store, five[-1])
    assert _requests(sandbox)[DATED_READ] == 3


def test_incremental_pull_reads_deal_companies_from_the_date_versioned_associations_api(
    sandbox: Sandbox, make_connector: Callable[..., HubSpotConnector]
) -> None:
    """HubSpot ends support of its v4 APIs on 2027-03-30: the changed deals' companies are read
    from `/crm/associations/2026-09/deals/companies/batch/read` (v4's body and answer), one call
    for them all, and v4 is no longer called."""
    store = _store(sandbox)
    changed = [str(i) for i in store.order[:3]]
    since = datetime.now(UTC) - timedelta(seconds=1)
    for deal_id in changed:
        store.associate(deal_id, dict(store.companies_of.of[deal_id]))  # touched, same company
    _clear(sandbox)
    deals = list(make_connector().deals(since))
    assert sorted(d["id"] for d in deals) == sorted(changed)
    for deal in deals:
        [company] = store.companies_of.of[deal["id"]]
        assert _account(deal) == _name(store, company)
    requests = _requests(sandbox)
    assert requests[DATED_READ] == 1
    assert V4_READ not in requests


def test_a_date_versioned_associations_read_over_the_rate_limit_is_retried_by_the_call_policy(
    sandbox: Sandbox, make_connector: Callable[..., HubSpotConnector]
) -> None:
    """The read sent through the SDK's REST client is one call of the connector's policy: its
    429 (HubSpot's ten-second limit, one call a second here) is waited out and retried."""
    store = _store(sandbox)
    deal_id = str(store.order[1])
    since = datetime.now(UTC) - timedelta(seconds=1)
    store.associate(deal_id, dict(store.companies_of.of[deal_id]))
    connector = make_connector(rate_limit=(10_000, 1.0))  # the window the sandbox enforces
    connector.pipelines()  # kept: the pull's calls are the search, then the companies reads
    faults = Faults(enforce_rate_limit=True, rate_limit=1, rate_window=1.0)
    sandbox.servers["hubspot"].faults.set(faults)
    _clear(sandbox)
    [deal] = list(connector.deals(since))
    [company] = store.companies_of.of[deal_id]
    assert _account(deal) == _name(store, company)
    assert connector._policy.retries()["read deal companies"] >= 1
    assert _requests(sandbox)[DATED_READ] == 1 + connector._policy.retries()["read deal companies"]
    assert V4_READ not in _requests(sandbox)


def test_a_company_id_of_the_associations_answer_reads_alike_as_a_number_or_a_string() -> None:
    """v4 answers `toObjectId` as a number; the v4 and dated references show a string. The
    same company either way, primary by type id 5 only."""
    types = [{"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"}]
    unlabeled = [{"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None}]
    for first, second in ((77, 78), ("77", "78")):
        result = {
            "from": {"id": "1"},
            "to": [
                {"toObjectId": first, "associationTypes": types + unlabeled},
                {"toObjectId": second, "associationTypes": unlabeled},
            ],
        }
        assert links_from_v4(result) == {"77": True, "78": False}


def test_an_incremental_read_by_a_token_that_may_not_read_companies_says_why_after_one_refusal(
    sandbox: Sandbox, make_connector: Callable[..., HubSpotConnector]
) -> None:
    """The date-versioned associations read refused (403 MISSING_SCOPES) is not retried: the
    changed deals are read without accounts, each saying why, and no company name is asked."""
    store = _store(sandbox)
    deal_id = str(store.order[2])
    since = datetime.now(UTC) - timedelta(seconds=1)
    store.associate(deal_id, dict(store.companies_of.of[deal_id]))
    sandbox.servers["hubspot"].emulator.companies_scope = False
    _clear(sandbox)
    [deal] = list(make_connector().deals(since))
    assert deal["id"] == deal_id and deal["companies"] == []
    assert deal["companies_unreadable"] == NO_SCOPE
    requests = _requests(sandbox)
    assert requests[DATED_READ] == 1
    assert "POST /crm/objects/2026-09/companies/batch/read" not in requests
    assert sandbox.servers["hubspot"].stats.snapshot()["statuses"].get("403") == 1


# What GET /crm/objects/2026-09/deals?associations=companies answers a token without
# crm.objects.companies.read is documented nowhere: the deals with their companies' ids (whose
# names are then refused), the deals without associations, or a 403 MISSING_SCOPES.
@pytest.mark.parametrize("answer", ["shown", "omitted", "refused"])
def test_a_token_that_may_not_read_companies_reads_the_deals_without_accounts_and_says_why(
    answer: str, sandbox: Sandbox, connector: HubSpotConnector
) -> None:
    """Upgrading must not stop a nightly sync whose private app lacks the companies scope: its
    deals are read as before, without accounts, and each says why (a plan repeats it), however
    HubSpot answers the deals list that asks for their companies."""
    store = _store(sandbox)
    emulator = sandbox.servers["hubspot"].emulator
    emulator.companies_scope = False
    emulator.unscoped_associations = answer
    deals = list(connector.deals())
    assert len(deals) == len(store.live)
    assert {account_from_companies(d["companies"])[0] for d in deals} == {None}
    assert {d["companies_unreadable"] for d in deals} == {NO_SCOPE}
    assert "crm.objects.companies.read" in NO_SCOPE
    requests = _requests(sandbox)
    pages = math.ceil(len(deals) / 100)
    refused = answer == "refused"  # the refused page is asked again, without companies
    assert requests["GET /crm/objects/2026-09/deals"] == pages + refused
    # One refused company read at most (none after a refused list), then no more.
    assert requests.get("POST /crm/objects/2026-09/companies/batch/read", 0) == (not refused)


def test_deals_without_companies_read_by_a_token_that_may_read_them_cost_one_check_at_most(
    sandbox: Sandbox, connector: HubSpotConnector
) -> None:
    """A full read whose first deals show no company asks once whether companies are readable
    (they may be left out for want of the scope); a deal showing companies settles it."""
    store = _store(sandbox)
    without = [str(i) for i in store.order[: len(store.order) // 2]]  # the first pages' deals
    for deal_id in without:
        store.associate(deal_id, {})
    deals = list(connector.deals())
    assert [d["companies"] for d in deals if d["id"] in without] == [[]] * len(without)
    assert not any("companies_unreadable" in d for d in deals)
    companies = {c for links in store.companies_of.of.values() for c in links}
    names = _requests(sandbox)["POST /crm/objects/2026-09/companies/batch/read"]
    assert names == math.ceil(len(companies) / 100) + 1
