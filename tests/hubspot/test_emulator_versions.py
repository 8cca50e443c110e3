"""The HubSpot emulator serves every call crmsync makes on the date-versioned paths of 2026-03
and 2026-09 (`/crm/objects/{ver}/deals`, `/crm/pipelines/{ver}/deals`, `/crm/owners/{ver}`,
`/account-info/{ver}/details`, ...) with the answers of v3 (and v4, for the associations read),
which it keeps serving; a version HubSpot never released is a 404, as any unknown path."""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3

from connectors.sandbox.launcher import Sandbox

VERSIONS = ("2026-03", "2026-09")
# Fields that differ from one answer to the next whatever the path (times, request ids).
VOLATILE = {"startedAt", "completedAt", "correlationId", "link"}


def _raw(sandbox: Sandbox, method: str, path: str, body: Any = None) -> urllib3.BaseHTTPResponse:
    return urllib3.request(
        method,
        sandbox.urls["hubspot"] + path,
        headers={"Authorization": f"Bearer {sandbox.tokens['hubspot']}"},
        body=None if body is None else json.dumps(body),
        retries=False,
    )


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    return [_stable(v) for v in value] if isinstance(value, list) else value


def _answer(sandbox: Sandbox, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = _raw(sandbox, method, path, body)
    return response.status, _stable(response.json())


def _reads(sandbox: Sandbox) -> list[tuple[str, str, str, Any]]:
    """(method, v3 path, dated path with {ver}, body) of each read crmsync makes."""
    store = sandbox.servers["hubspot"].emulator.store
    deals = [str(i) for i in store.order[:3]]
    company = next(iter(store.companies))
    search = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["dealname", "hs_lastmodifieddate"],
        "limit": 5,
        "after": "5",
    }
    listed = "?limit=5&after=5&properties=dealname&properties=amount&associations=companies"
    read = {"inputs": [{"id": i} for i in [*deals, "1"]], "properties": ["dealname"]}
    return [
        ("GET", f"/crm/v3/objects/deals{listed}", f"/crm/objects/{{ver}}/deals{listed}", None),
        (
            "GET",
            "/crm/v3/objects/deals?archived=true",
            "/crm/objects/{ver}/deals?archived=true",
            None,
        ),
        ("POST", "/crm/v3/objects/deals/search", "/crm/objects/{ver}/deals/search", search),
        ("POST", "/crm/v3/objects/deals/batch/read", "/crm/objects/{ver}/deals/batch/read", read),
        ("GET", "/crm/v3/objects/companies?limit=3", "/crm/objects/{ver}/companies?limit=3", None),
        (
            "POST",
            "/crm/v3/objects/companies/search",
            "/crm/objects/{ver}/companies/search",
            {**search, "properties": ["name", "hs_lastmodifieddate"]},
        ),
        (
            "POST",
            "/crm/v3/objects/companies/batch/read",
            "/crm/objects/{ver}/companies/batch/read",
            {"inputs": [{"id": company}, {"id": "0"}], "properties": ["name"]},
        ),
        ("GET", "/crm/v3/pipelines/deals", "/crm/pipelines/{ver}/deals", None),
        ("GET", "/crm/v3/owners/?limit=2", "/crm/owners/{ver}?limit=2", None),
        ("GET", "/crm/v3/owners/?archived=true", "/crm/owners/{ver}?archived=true", None),
        ("GET", "/account-info/v3/details", "/account-info/{ver}/details", None),
        (
            "POST",
            "/crm/v4/associations/deals/companies/batch/read",
            "/crm/associations/{ver}/deals/companies/batch/read",
            {"inputs": [{"id": i} for i in deals]},
        ),
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_each_read_crmsync_makes_answers_on_a_dated_path_as_on_v3(
    sandbox: Sandbox, version: str
) -> None:
    for method, v3, dated, body in _reads(sandbox):
        path = dated.format(ver=version)
        status, answer = _answer(sandbox, method, path, body)
        assert status in (200, 207), (path, answer)
        assert (status, answer) == _answer(sandbox, method, v3, body), path
    requests = sandbox.servers["hubspot"].stats.snapshot()["requests"]
    assert requests["GET /crm/objects/" + version + "/deals"] == 2  # counted by version
    assert requests["GET /account-info/" + version + "/details"] == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_a_dated_pages_next_link_carries_the_dated_path(sandbox: Sandbox, version: str) -> None:
    for path in (
        f"/crm/objects/{version}/deals?limit=2",
        f"/crm/objects/{version}/companies?limit=2",
        f"/crm/owners/{version}?limit=1",
    ):
        link = _raw(sandbox, "GET", path).json()["paging"]["next"]["link"]
        assert link == f"https://api.hubapi.com{path.split('?')[0]}?after=" + link.split("=")[-1]


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_writes_on_a_dated_path_write_as_v3_does(sandbox: Sandbox, version: str) -> None:
    store = sandbox.servers["hubspot"].emulator.store
    deal_id = str(store.order[0])
    base = f"/crm/objects/{version}/deals/batch"
    update = {"inputs": [{"id": deal_id, "properties": {"dealname": f"renamed {version}"}}]}
    assert _raw(sandbox, "POST", f"{base}/update", update).status == 200
    assert store.live[deal_id]["properties"]["dealname"] == f"renamed {version}"
    pipeline = store.pipelines[0]
    stage = {"pipeline": str(pipeline["id"]), "dealstage": str(pipeline["stages"][0]["id"])}
    create = {"inputs": [{"properties": {"dealname": "new", **stage}}]}
    created = _raw(sandbox, "POST", f"{base}/create", create)
    assert created.status == 201
    new_id = created.json()["results"][0]["id"]
    archive = {"inputs": [{"id": new_id}]}
    assert _raw(sandbox, "POST", f"{base}/archive", archive).status == 204
    assert new_id in store.archived


@pytest.mark.parametrize(
    "path",
    [
        "/crm/objects/2025-09/deals",
        "/crm/objects/2027-03/deals",
        "/crm/pipelines/2026-04/deals",
        "/crm/owners/v5",
        "/account-info/2024-01/details",
    ],
)
def test_a_version_hubspot_never_released_is_not_found(sandbox: Sandbox, path: str) -> None:
    response = _raw(sandbox, "GET", path)
    assert response.status == 404
    assert response.json()["category"] == "OBJECT_NOT_FOUND"


@pytest.mark.parametrize(
    ("base", "enforced"),
    [
        ("/crm/v3/objects/deals", False),
        ("/crm/objects/2026-03/deals", False),
        ("/crm/objects/2026-09/deals", True),
    ],
)
def test_an_admins_required_property_rule_refuses_writes_from_2026_09_on(
    sandbox: Sandbox, base: str, enforced: bool
) -> None:
    emulator = sandbox.servers["hubspot"].emulator
    emulator.required_when = ("closed_lost_reason", "dealstage", "closedlost")
    store = emulator.store
    deal_id = next(
        i
        for i, d in store.live.items()
        if d["properties"]["pipeline"] == "default" and d["properties"]["dealstage"] != "closedlost"
    )
    update = {"inputs": [{"id": deal_id, "properties": {"dealstage": "closedlost"}}]}
    create = {"inputs": [{"properties": {"dealname": "New", "dealstage": "closedlost"}}]}
    for action, body in (("update", update), ("create", create)):
        answer = _raw(sandbox, "POST", f"{base}/batch/{action}", body)
        errors = answer.json().get("errors") or []
        assert (answer.status == 207) is enforced, (action, answer.json())
        assert [e["category"] for e in errors] == ["VALIDATION_ERROR"] * enforced
    assert (store.live[deal_id]["properties"]["dealstage"] == "closedlost") is not enforced
