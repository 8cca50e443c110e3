"""The HubSpot emulator serves companies and deal -> company associations as HubSpot does: the
v3 deals list with `associations=companies` (the primary company twice: `deal_to_company` and
`deal_to_company_unlabeled`), the v4 batch read and its date-versioned successor (2026-03:
the same body and answer; type ids 5 primary / 341 unlabeled, a deal without companies an
error of a 207), companies batch read. Read through the official SDK (the date-versioned
read, which it does not wrap, through its REST client)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import BatchReadInputSimplePublicObjectId, SimplePublicObjectId
from hubspot.crm.deals import ApiException, PublicObjectSearchRequest

from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import generate
from connectors.sandbox.launcher import Sandbox, start_sandbox


def _sdk(sandbox: Sandbox) -> HubSpot:
    return HubSpot(access_token=sandbox.tokens["hubspot"], host=sandbox.urls["hubspot"])


V4_READ = "/crm/v4/associations/{}/{}/batch/read"
DATED_READ = "/crm/associations/2026-03/{}/{}/batch/read"


def _post(sandbox: Sandbox, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of a POST sent as the connector sends a path the SDK wraps not: by
    the SDK's REST client (which raises its ApiException for a status past 2xx)."""
    rest = _sdk(sandbox).crm.deals.basic_api.api_client.rest_client
    token = sandbox.tokens["hubspot"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    url = sandbox.urls["hubspot"] + path
    try:
        response = rest.request("POST", url, headers=headers, body=body, _preload_content=False)
    except ApiException as exc:
        return int(exc.status), json.loads(exc.body)
    return int(response.status), json.loads(response.data)


def _store(sandbox: Sandbox) -> Any:
    return sandbox.servers["hubspot"].emulator.store


def _first_deal(sandbox: Sandbox) -> str:
    return str(_store(sandbox).order[0])


def test_the_deals_list_shows_a_primary_company_twice_and_another_once_unlabeled(
    sandbox: Sandbox,
) -> None:
    deal_id = _first_deal(sandbox)
    store = _store(sandbox)
    [primary] = store.companies_of.of[deal_id]
    other = next(c for c in store.companies if c != primary)
    store.associate(deal_id, {primary: True, other: False})
    page = _sdk(sandbox).crm.deals.basic_api.get_page(limit=1, associations=["companies"])
    [deal] = page.results
    entries = [(a.id, a.type) for a in deal.associations["companies"].results]
    assert entries == [
        (primary, "deal_to_company"),
        (primary, "deal_to_company_unlabeled"),
        (other, "deal_to_company_unlabeled"),
    ]
    plain = _sdk(sandbox).crm.deals.basic_api.get_page(limit=1)
    assert plain.results[0].associations is None  # only when asked for


def test_the_v4_batch_read_marks_the_primary_company_by_type_id_and_reports_deals_without_any(
    sandbox: Sandbox,
) -> None:
    store = _store(sandbox)
    with_company, without = (str(i) for i in store.order[:2])
    store.associate(without, {})
    request = BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in (with_company, without)]
    )
    answer = _sdk(sandbox).crm.associations.v4.batch_api.get_page("deals", "companies", request)
    [result] = answer.results
    [company] = store.companies_of.of[with_company]
    assert result._from.id == with_company
    [target] = result.to
    assert str(target.to_object_id) == company  # the SDK types it a string...
    raw = _sdk(sandbox).crm.associations.v4.batch_api.get_page(
        "deals", "companies", request, _preload_content=False
    )
    assert json.loads(raw.data)["results"][0]["to"][0]["toObjectId"] == int(company)  # ...not so
    assert sorted((t.type_id, t.label) for t in target.association_types) == [
        (5, "Primary"),
        (341, None),
    ]
    [error] = answer.errors
    assert error.sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert error.context["fromObjectId"] == [without]


def test_the_date_versioned_batch_read_answers_as_the_v4_read(sandbox: Sandbox) -> None:
    """HubSpot documents `/crm/associations/2026-03/{from}/{to}/batch/read` with v4's body and
    answer: the same results, per-deal paging and 207 errors, object types named or by id."""
    store = _store(sandbox)
    one, paged, without = (str(i) for i in store.order[:3])
    three = list(store.companies)[:3]
    store.associate(paged, {c: c == three[-1] for c in three})
    store.associate(without, {})
    sandbox.servers["hubspot"].emulator.associations_page = 2
    body = {"inputs": [{"id": one}, {"id": paged}, {"id": paged, "after": "2"}, {"id": without}]}

    def answer(path: str) -> tuple[int, dict[str, Any]]:
        status, got = _post(sandbox, path, body)
        return status, {k: v for k, v in got.items() if k not in ("startedAt", "completedAt")}

    status, v4 = answer(V4_READ.format("deals", "companies"))
    assert status == 207 and [r["from"]["id"] for r in v4["results"]] == [one, paged, paged]
    assert v4["results"][1]["paging"]["next"]["after"] == "2"
    assert [e["context"]["fromObjectId"] for e in v4["errors"]] == [[without]]
    assert answer(DATED_READ.format("deals", "companies")) == (207, v4)
    assert answer(DATED_READ.format("0-3", "0-2")) == (207, v4)


@pytest.mark.parametrize("path", [V4_READ, DATED_READ])
def test_each_associations_batch_read_refuses_as_hubspot_does(path: str, sandbox: Sandbox) -> None:
    """Both reads take at most 1,000 deals, refuse a token without the companies scope (403
    MISSING_SCOPES) and take the sandbox's injected faults (a 429 here)."""
    read = path.format("deals", "companies")
    too_many = {"inputs": [{"id": str(i)} for i in range(1001)]}
    status, refused = _post(sandbox, read, too_many)
    assert status == 400 and "limit of 1000" in refused["message"]
    emulator = sandbox.servers["hubspot"].emulator
    emulator.companies_scope = False
    status, refused = _post(sandbox, read, {"inputs": [{"id": str(emulator.store.order[0])}]})
    assert status == 403 and refused["category"] == "MISSING_SCOPES"
    sandbox.servers["hubspot"].faults.set(Faults(burst429=1, retry_after=0.01))
    status, refused = _post(sandbox, read, {"inputs": []})
    assert status == 429 and refused["policyName"] == "TEN_SECONDLY_ROLLING"


def test_companies_are_batch_read_by_id_with_their_names(sandbox: Sandbox) -> None:
    store = _store(sandbox)
    known = list(store.companies)[:2]
    request = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in [*known, "404"]],
        properties=["name"],
        properties_with_history=[],
    )
    answer = _sdk(sandbox).crm.companies.batch_api.read(request)
    names = {c.id: c.properties["name"] for c in answer.results}
    assert names == {i: store.companies[i]["properties"]["name"] for i in known}
    assert answer.errors[0].context["ids"] == ["404"]


def test_moving_a_deal_to_another_company_modifies_the_deal(sandbox: Sandbox) -> None:
    deal_id = _first_deal(sandbox)
    store = _store(sandbox)
    other = next(c for c in store.companies if c not in store.companies_of.of[deal_id])
    before = datetime.now(UTC) - timedelta(seconds=1)
    store.associate(deal_id, {other: True})
    since = str(int(before.timestamp() * 1000))
    changed = {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since}
    search = PublicObjectSearchRequest(filter_groups=[{"filters": [changed]}], limit=10)
    found = _sdk(sandbox).crm.deals.search_api.do_search(search)
    assert [d.id for d in found.results] == [deal_id]


def test_a_dataset_without_companies_loads_and_its_deals_have_none(
    hs_data: dict[str, Any],
) -> None:
    old = copy.deepcopy(hs_data)
    old["hubspot"].pop("companies")
    for deal in old["hubspot"]["deals"]:
        deal.pop("associations", None)
    with start_sandbox(old, systems=["hubspot"], faults=Faults(rate_limit=10_000)) as running:
        page = _sdk(running).crm.deals.basic_api.get_page(limit=5, associations=["companies"])
        assert [d.associations for d in page.results] == [None] * 5
        assert "companies" not in running.servers["hubspot"].emulator.dump()


def test_the_dump_keeps_companies_and_each_deals_associations(sandbox: Sandbox) -> None:
    dumped = sandbox.servers["hubspot"].emulator.dump()
    with start_sandbox({"hubspot": dumped}, systems=["hubspot"]) as again:
        assert again.servers["hubspot"].emulator.dump() == dumped
    assert dumped["companies"] and all("associations" in d for d in dumped["deals"])


def test_generated_hubspot_deals_have_a_primary_company_named_as_in_the_other_crms() -> None:
    dataset, _ = generate(120, seed=3)
    companies = {c["id"]: c["properties"]["name"] for c in dataset["hubspot"]["companies"]}
    organizations = {o["name"] for o in dataset["pipedrive"]["organizations"]}
    for deal in dataset["hubspot"]["deals"]:
        entries = deal["associations"]["companies"]["results"]
        [primary] = [e["id"] for e in entries if e["type"] == "deal_to_company"]
        assert companies[primary] in organizations


def _create_with(sandbox: Sandbox, company: str, type_id: int) -> Any:
    """A deal created through the SDK's batch create, associated with `company` by
    `type_id`, as the create's own `associations` name it."""
    from hubspot.crm.deals import (
        AssociationSpec,
        BatchInputSimplePublicObjectBatchInputForCreate,
        PublicAssociationsForObject,
        PublicObjectId,
        SimplePublicObjectBatchInputForCreate,
    )

    spec = AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=type_id)
    stage = _store(sandbox).pipelines[0]["stages"][0]
    deal = SimplePublicObjectBatchInputForCreate(
        properties={"dealname": "Copy", "pipeline": _store(sandbox).pipelines[0]["id"],
                    "dealstage": stage["id"]},
        associations=[PublicAssociationsForObject(to=PublicObjectId(id=company), types=[spec])],
        object_write_trace_id="t1",
    )  # fmt: skip
    request = BatchInputSimplePublicObjectBatchInputForCreate(inputs=[deal])
    return _sdk(sandbox).crm.deals.batch_api.create(request)


def test_a_deal_created_with_its_primary_company_shows_it_as_any_deal_does(
    sandbox: Sandbox,
) -> None:
    company = _store(sandbox).add_company("Nimbus Ventures")
    [created] = _create_with(sandbox, company, 5).results
    shown = _sdk(sandbox).crm.deals.basic_api.get_by_id(created.id, associations=["companies"])
    entries = sorted((a.id, a.type) for a in shown.associations["companies"].results)
    assert entries == [(company, "deal_to_company"), (company, "deal_to_company_unlabeled")]


def test_a_create_naming_an_unknown_company_or_type_is_refused_and_makes_no_deal(
    sandbox: Sandbox,
) -> None:
    known = _store(sandbox).add_company("Nimbus Ventures")
    before = len(_store(sandbox).live)
    for company, type_id in (("404404", 5), (known, 3)):  # 3: deal to contact
        answer = _create_with(sandbox, company, type_id)
        assert not answer.results
        [error] = answer.errors
        assert error.category == "VALIDATION_ERROR"
    assert len(_store(sandbox).live) == before
