"""The Pipedrive emulator serves organizations as v1 does (list, get, create, search by name)
through the official client, in the documented envelope, pages and errors; and the `org_id`
object of every deal it serves agrees with the organization of that id."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import requests
from pipedrive import exceptions
from pipedrive.client import Client

from connectors.sandbox.launcher import Sandbox


@pytest.fixture
def client(sandbox: Sandbox) -> Client:
    pd = Client(domain=sandbox.urls["pipedrive"])
    pd.set_api_token(sandbox.tokens["pipedrive"])
    return pd


def _all_orgs(client: Client) -> list[dict[str, Any]]:
    orgs: list[dict[str, Any]] = []
    start: int | None = 0
    while start is not None:
        body = client.organizations.get_all_organizations(params={"start": start, "limit": 100})
        assert body["success"] is True
        orgs += body["data"] or []
        page = body["additional_data"]["pagination"]
        start = page.get("next_start") if page["more_items_in_collection"] else None
    return orgs


def test_organizations_list_in_pages_and_agree_with_every_deals_org_id(client, pd_data):
    orgs = {o["id"]: o for o in _all_orgs(client)}
    assert len(orgs) == len(pd_data["pipedrive"]["organizations"]) > 100  # several pages
    for deal in pd_data["pipedrive"]["deals"]:
        ref = deal["org_id"]
        org = orgs[ref["value"]]
        assert (ref["name"], ref["owner_id"]) == (org["name"], org["owner_id"]["id"])
    one = client.organizations.get_organization(next(iter(orgs)))["data"]
    assert one == orgs[one["id"]]
    assert client.organizations.get_all_organizations(params={"start": 10_000})["data"] is None


def test_organization_search_matches_whole_names_ignoring_case(client):
    made = client.organizations.create_organization({"name": "Nimbus Ventures"})["data"]
    client.organizations.create_organization({"name": "Nimbus Ventures Holding"})
    params = {"term": "nimbus VENTURES", "fields": "name", "exact_match": "true"}
    body = client.organizations.search_organizations(params=params)
    assert [i["item"]["id"] for i in body["data"]["items"]] == [made["id"]]
    item = body["data"]["items"][0]["item"]
    assert (item["type"], item["name"]) == ("organization", "Nimbus Ventures")
    assert body["additional_data"]["pagination"]["more_items_in_collection"] is False
    none = {"term": "No Such Company", "fields": "name", "exact_match": "true"}
    assert client.organizations.search_organizations(params=none)["data"]["items"] == []


def test_a_created_organization_is_owned_as_asked_and_takes_deals(client, pd_data):
    owner = pd_data["pipedrive"]["users"][1]["id"]
    made = client.organizations.create_organization({"name": "Acme Migration", "owner_id": owner})
    org = made["data"]
    assert made["success"] and org["owner_id"]["id"] == owner and org["name"] == "Acme Migration"
    deal = client.deals.create_deal({"title": "Filed", "org_id": org["id"]})["data"]
    assert deal["org_id"]["value"] == org["id"] and deal["org_id"]["name"] == "Acme Migration"


def test_organization_errors_come_in_the_error_envelope(client):
    with pytest.raises(exceptions.BadRequestError) as caught:
        client.organizations.create_organization({"name": "  "})
    body = caught.value.response.json()
    assert body["success"] is False and body["data"] is None and "Name" in body["error"]
    with pytest.raises(exceptions.NotFoundError):
        client.organizations.get_organization(987_654)
    with pytest.raises(exceptions.BadRequestError) as refused:
        client.deals.create_deal({"title": "Orphan", "org_id": 987_654})
    assert "Organization with id 987654" in refused.value.response.json()["error"]
    with pytest.raises(exceptions.BadRequestError):
        client.organizations.search_organizations(params={"term": "A", "fields": "name"})


def test_an_organization_named_in_fail_ids_is_refused_and_not_made(sandbox, client):
    """The `fail_ids` fault refuses an organization by name (v1 and v2), as a rule of the
    account might: what refuses crmsync's copies filed under that account."""
    faults = sandbox.servers["pipedrive"].faults
    faults.set(replace(faults.faults, fail_ids=("Refused Holdings",)))
    with pytest.raises(exceptions.BadRequestError) as refused:
        client.organizations.create_organization({"name": " Refused Holdings "})
    assert refused.value.response.json()["error"] == "Injected failure: organization rejected"
    v2 = requests.post(
        f"{sandbox.urls['pipedrive']}/api/v2/organizations",
        json={"name": "Refused Holdings"},
        headers={"x-api-token": sandbox.tokens["pipedrive"]},
        timeout=10,
    )
    assert v2.status_code == 400, v2.text
    params = {"term": "Refused Holdings", "fields": "name", "exact_match": "true"}
    assert client.organizations.search_organizations(params=params)["data"]["items"] == []
    made = client.organizations.create_organization({"name": "Refused Holdings Two"})
    assert made["success"] is True  # only the name given is refused
