"""The HubSpot emulator speaks the real wire format: the official SDK used as documented,
responses validated against the spec's component schemas, HubSpot's write semantics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import urllib3
import yaml
from hubspot import HubSpot
from hubspot.crm.deals import (
    BatchInputSimplePublicObjectBatchInput,
    BatchResponseSimplePublicObjectWithErrors,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectInput,
)
from hubspot.crm.deals.exceptions import ApiException

from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.launcher import Sandbox
from tests.openapi import as_json_schema

SPEC = Path("/work/shared/specs/hubspot_crm_v3_deals_subset.openapi.yaml")


@pytest.fixture
def sdk(sandbox: Sandbox) -> HubSpot:
    return HubSpot(access_token=sandbox.tokens["hubspot"], host=sandbox.urls["hubspot"])


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip("shared HubSpot spec not present")
    return yaml.safe_load(SPEC.read_text())["components"]["schemas"]


def _validate(instance: Any, name: str, schemas: dict[str, Any]) -> None:
    defs = as_json_schema(schemas)
    jsonschema.validate(instance, {"$ref": f"#/$defs/{name}", "$defs": defs})


def _raw(sandbox: Sandbox, method: str, path: str, body: Any = None, token: str | None = None):
    headers = {"Authorization": f"Bearer {token or sandbox.tokens['hubspot']}"}
    return urllib3.request(
        method,
        sandbox.urls["hubspot"] + path,
        headers=headers,
        body=None if body is None else json.dumps(body),
        retries=False,
    )


def test_sdk_lists_pipelines_owners_and_pages_deals(sdk, hs_data):
    pipelines = sdk.crm.pipelines.pipelines_api.get_all("deals").results
    assert {p.id for p in pipelines} == {p["id"] for p in hs_data["hubspot"]["pipelines"]}
    owners = sdk.crm.owners.get_all()  # the SDK's own paging helper
    active = [o["id"] for o in hs_data["hubspot"]["owners"] if not o.get("archived")]
    assert sorted(o.id for o in owners) == sorted(active)
    deals = sdk.crm.deals.get_all(properties=["dealname", "dealstage"])
    live = [d for d in hs_data["hubspot"]["deals"] if not d.get("archived")]
    assert len(deals) == len(live)
    assert set(deals[0].properties) == {
        "dealname",
        "dealstage",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    }


def test_responses_match_the_spec_schemas(sandbox, schemas):
    page = _raw(sandbox, "GET", "/crm/v3/objects/deals?limit=100&properties=amount,dealstage")
    _validate(page.json(), "DealPage", schemas)
    pipelines = _raw(sandbox, "GET", "/crm/v3/pipelines/deals").json()["results"]
    for pipeline in pipelines:
        _validate(pipeline, "Pipeline", schemas)
    for owner in _raw(sandbox, "GET", "/crm/v3/owners/?limit=100").json()["results"]:
        _validate(owner, "PublicOwner", schemas)
    deal_id = page.json()["results"][0]["id"]
    batch = _raw(
        sandbox,
        "POST",
        "/crm/v3/objects/deals/batch/update",
        {
            "inputs": [
                {"id": deal_id, "properties": {"amount": "1"}},
                {"id": "1", "properties": {"amount": "1"}},
            ]
        },
    )
    assert batch.status == 207
    _validate(batch.json(), "BatchResponseWithErrors", schemas)
    assert batch.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert batch.json()["errors"][0]["context"] == {"ids": ["1"]}
    bad = _raw(sandbox, "GET", "/crm/v3/objects/deals?limit=101")
    assert bad.status == 400
    _validate(bad.json(), "Error", schemas)
    assert bad.json()["category"] == "VALIDATION_ERROR"


def test_bad_token_gets_401_invalid_authentication(sandbox):
    response = _raw(sandbox, "GET", "/crm/v3/objects/deals", token="wrong")
    assert response.status == 401 and response.json()["category"] == "INVALID_AUTHENTICATION"


def test_rate_limit_headers_are_sent_except_on_search(sandbox):
    listed = _raw(sandbox, "GET", "/crm/v3/objects/deals")
    for name in (
        "Daily",
        "Daily-Remaining",
        "Interval-Milliseconds",
        "Max",
        "Remaining",
        "Secondly",
        "Secondly-Remaining",
    ):
        assert f"X-HubSpot-RateLimit-{name}" in listed.headers
    searched = _raw(sandbox, "POST", "/crm/v3/objects/deals/search", {"limit": 1})
    assert searched.status == 200
    assert not [h for h in searched.headers if h.lower().startswith("x-hubspot-ratelimit")]


def test_429_has_hubspots_body(sandbox):
    from connectors.sandbox.faults import Faults

    sandbox.servers["hubspot"].faults.set(Faults(burst429=1, retry_after=0.01))
    response = _raw(sandbox, "GET", "/crm/v3/objects/deals")
    assert response.status == 429
    body = response.json()
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."


def test_the_ten_second_limit_429_has_no_retry_after_only_the_limit_headers(sandbox):
    """HubSpot's ten-second-window 429 usually carries no Retry-After (API-NOTES §1, spec
    TooManyRequests): a client has to wait on X-HubSpot-RateLimit-Remaining / -Interval."""
    from connectors.sandbox.faults import Faults

    sandbox.servers["hubspot"].faults.set(
        Faults(enforce_rate_limit=True, rate_limit=2, rate_window=10.0)
    )
    statuses = [_raw(sandbox, "GET", "/crm/v3/objects/deals") for _ in range(3)]
    refused = statuses[-1]
    assert [r.status for r in statuses] == [200, 200, 429]
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert "Retry-After" not in refused.headers
    assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert refused.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"


def test_search_filters_sorts_and_pages_like_hubspot(sdk, hs_data):
    request = PublicObjectSearchRequest(
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "pipeline", "operator": "EQ", "value": "default"},
                    {"propertyName": "amount", "operator": "GT", "value": "1000"},
                ]
            },
            {
                "filters": [
                    {
                        "propertyName": "dealstage",
                        "operator": "IN",
                        "values": ["closedwon", "closedlost"],
                    }
                ]
            },
        ],
        sorts=["amount"],  # the SDK's string form
        properties=["amount", "pipeline", "dealstage"],
        limit=200,
    )
    found = sdk.crm.deals.search_api.do_search(public_object_search_request=request)
    live = [d["properties"] for d in hs_data["hubspot"]["deals"] if not d.get("archived")]
    expected = [
        p
        for p in live
        if (p["pipeline"] == "default" and p.get("amount") and float(p["amount"]) > 1000)
        or p["dealstage"] in ("closedwon", "closedlost")
    ]
    assert found.total == len(expected)
    amounts = [float(d.properties["amount"]) for d in found.results if d.properties["amount"]]
    assert amounts == sorted(amounts)


def test_search_in_matches_a_string_only_by_its_lowercase_value(sdk, hs_data):
    name = next(d["properties"]["dealname"] for d in hs_data["hubspot"]["deals"])
    assert name != name.lower()

    def found(value: str) -> int:
        filters = [{"propertyName": "dealname", "operator": "IN", "values": [value]}]
        request = PublicObjectSearchRequest(filter_groups=[{"filters": filters}], limit=10)
        return int(sdk.crm.deals.search_api.do_search(public_object_search_request=request).total)

    assert found(name) == 0  # HubSpot: "values must be lowercase"
    assert found(name.lower()) >= 1


def test_search_on_modification_time_takes_epoch_ms_and_iso(sdk):
    base = {
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
        "limit": 5,
    }
    iso = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "GTE",
                        "value": "2025-06-01T00:00:00Z",
                    }
                ]
            }
        ]
    }
    ms = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "GTE",
                        "value": "1748736000000",
                    }
                ]
            }
        ]
    }
    a = sdk.crm.deals.search_api.do_search({**base, **iso})
    b = sdk.crm.deals.search_api.do_search({**base, **ms})
    assert a.total == b.total > 0
    stamps = [d.properties["hs_lastmodifieddate"] for d in a.results]
    assert stamps == sorted(stamps, reverse=True)


def test_search_refuses_too_many_filters_and_too_big_pages(sandbox):
    many = {
        "filterGroups": [{"filters": [{"propertyName": "amount", "operator": "HAS_PROPERTY"}] * 10}]
        * 3
    }
    assert _raw(sandbox, "POST", "/crm/v3/objects/deals/search", many).status == 400
    assert _raw(sandbox, "POST", "/crm/v3/objects/deals/search", {"limit": 201}).status == 400


def test_stage_change_stamps_history_and_recomputes_closed_flags(sdk, hs_data):
    deal = next(
        d
        for d in hs_data["hubspot"]["deals"]
        if d["properties"]["pipeline"] == "default"
        and d["properties"]["dealstage"] != "closedwon"
        and not d.get("archived")
    )
    before = sdk.crm.deals.basic_api.get_by_id(deal["id"], properties=["hs_lastmodifieddate"])
    updated = sdk.crm.deals.basic_api.update(
        deal["id"], SimplePublicObjectInput(properties={"dealstage": "closedwon"})
    )
    props = updated.properties
    assert props["hs_is_closed"] == "true" and props["hs_is_closed_won"] == "true"
    assert props["hs_deal_stage_probability"] == "1.0"
    assert props["hs_date_entered_closedwon"] == props["hs_lastmodifieddate"]
    assert props["hs_lastmodifieddate"] > before.properties["hs_lastmodifieddate"]
    assert updated.updated_at > before.updated_at


def test_stage_of_another_pipeline_is_a_validation_error(sdk, hs_data):
    deal = next(
        d
        for d in hs_data["hubspot"]["deals"]
        if d["properties"]["pipeline"] == "default" and not d.get("archived")
    )
    with pytest.raises(ApiException) as caught:
        sdk.crm.deals.basic_api.update(
            deal["id"], SimplePublicObjectInput(properties={"dealstage": "no-such-stage"})
        )
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["category"] == "VALIDATION_ERROR"


def test_sdk_maps_207_to_batch_response_with_errors(sdk, hs_data):
    live = [d["id"] for d in hs_data["hubspot"]["deals"] if not d.get("archived")]
    response = sdk.crm.deals.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=live[0], properties={"amount": "99"}),
                SimplePublicObjectBatchInput(id="123", properties={"amount": "1"}),
            ]
        )
    )
    assert isinstance(response, BatchResponseSimplePublicObjectWithErrors)
    assert response.num_errors == 1 and response.errors[0].context == {"ids": ["123"]}
    assert response.results[0].properties["amount"] == "99"


def test_creates_get_new_ids_and_show_up_in_reads(sdk, sandbox):
    created = sdk.crm.deals.batch_api.create(
        {"inputs": [{"properties": {"dealname": "Fresh", "dealstage": "appointmentscheduled"}}]}
    )
    new = created.results[0]
    assert new.id.isdigit() and new.properties["pipeline"] == "default"
    again = sdk.crm.deals.basic_api.get_by_id(new.id, properties=["dealname"])
    assert again.properties["dealname"] == "Fresh"
    dump = _raw(sandbox, "GET", "/__sandbox/dump").json()["hubspot"]
    assert new.id in {d["id"] for d in dump["deals"]}


def test_batch_archive_answers_204_for_unknown_ids_and_refuses_a_batch_whole(sdk, sandbox, hs_data):
    from connectors.sandbox.faults import Faults

    live = [d["id"] for d in hs_data["hubspot"]["deals"] if not d.get("archived")][:3]
    batch = sdk.crm.deals.batch_api
    assert batch.archive({"inputs": [{"id": live[0]}, {"id": "404404"}]}) is None  # 204
    assert batch.archive({"inputs": [{"id": live[0]}]}) is None  # already archived: 204 too
    shown = sdk.crm.deals.basic_api.get_by_id(live[0], archived=True)
    assert shown.archived and shown.archived_at is not None
    sandbox.servers["hubspot"].faults.set(Faults(rate_limit=10_000, fail_ids=(live[2],)))
    with pytest.raises(ApiException) as caught:
        batch.archive({"inputs": [{"id": live[1]}, {"id": live[2]}]})
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["context"] == {"ids": [live[2]]}
    remaining = {d.id for d in sdk.crm.deals.get_all()}
    assert {live[1], live[2]} <= remaining and live[0] not in remaining


def test_the_portals_time_zone_comes_from_the_dataset_and_goes_into_its_dump() -> None:
    emulator = HubSpotEmulator({"account": {"timeZone": "Australia/Sydney"}}, "token")
    assert emulator.time_zone == "Australia/Sydney"
    assert emulator.dump()["account"] == {"timeZone": "Australia/Sydney"}
    assert "account" not in HubSpotEmulator({}, "token").dump()  # UTC: as generated datasets


def test_the_portals_company_currency_comes_from_the_dataset_and_goes_into_its_dump() -> None:
    emulator = HubSpotEmulator({"account": {"companyCurrency": "EUR"}}, "token")
    assert emulator.company_currency == "EUR"
    assert emulator.dump()["account"] == {"companyCurrency": "EUR"}
    assert HubSpotEmulator({}, "token").company_currency == "USD"


def test_a_list_whose_request_line_is_too_long_is_refused_with_414_as_hubspots_front_end_does(
    sdk: HubSpot,
) -> None:
    properties = [f"hs_date_entered_{800_000_000 + n}" for n in range(500)]  # ~18,000 chars
    with pytest.raises(ApiException) as caught:
        sdk.crm.deals.basic_api.get_page(limit=1, properties=properties)
    assert caught.value.status == 414
    assert b"414 Request-URI Too Large" in caught.value.body.encode()
    assert sdk.crm.deals.basic_api.get_page(limit=1, properties=properties[:300]).results
