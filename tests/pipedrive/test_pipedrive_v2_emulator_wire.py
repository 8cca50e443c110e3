"""The Pipedrive emulator speaks API v2 (`/api/v2/...`, Pipedrive's v2 OpenAPI document and the v2
migration guide) beside v1, over the same deals: cursor paging that stays complete while deals
leave the list, the v2 filters, records without related objects, strict write validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import yaml

from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox
from mapping.pipedrive import PD_FIELD_CRMSYNC_ID, PD_FIELD_HUBSPOT_ID, PD_FIELD_SALESFORCE_ID

ANSWERS = Path(__file__).with_name("pipedrive_v2_answers.yaml")


class V2:
    """requests against /api/v2 with the token in the `x-api-token` header."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.base = sandbox.urls["pipedrive"] + "/api/v2"
        self.session = requests.Session()
        self.session.headers["x-api-token"] = sandbox.tokens["pipedrive"]

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=10, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["success"] is True
        return body

    def all(self, path: str, cursor: str | None = None, **params: Any) -> Iterator[dict[str, Any]]:
        while True:
            body = self.ok("GET", path, params={**params, "cursor": cursor})
            yield from body["data"]
            cursor = body["additional_data"]["next_cursor"]
            if cursor is None:
                return


@pytest.fixture
def v2(sandbox: Sandbox) -> V2:
    return V2(sandbox)


def _deals(pd_data: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pd_data["pipedrive"]["deals"])


def _live_ids(pd_data: dict[str, Any]) -> list[int]:
    return sorted(d["id"] for d in _deals(pd_data) if d["status"] != "deleted")


def _v1_put(sandbox: Sandbox, deal_id: int, body: dict[str, Any]) -> None:
    url = f"{sandbox.urls['pipedrive']}/v1/deals/{deal_id}"
    params = {"api_token": sandbox.tokens["pipedrive"]}
    assert requests.put(url, params=params, json=body, timeout=5).status_code == 200


# -- reads -------------------------------------------------------------------------------------


def test_v2_deals_page_by_cursor_through_every_not_deleted_deal_in_id_order(v2, pd_data):
    ids = [d["id"] for d in v2.all("/deals", limit=500)]
    assert ids == _live_ids(pd_data)


def test_a_v2_deal_has_ids_rfc3339_times_and_custom_fields_but_no_related_objects(v2, pd_data):
    stored = next(d for d in _deals(pd_data) if d["org_id"] and d["status"] == "lost")
    body = v2.ok("GET", f"/deals/{stored['id']}")
    assert set(body) == {"success", "data"}
    deal = body["data"]
    assert deal["owner_id"] == stored["user_id"]["id"]
    assert deal["org_id"] == stored["org_id"]["value"]
    assert deal["update_time"] == stored["update_time"].replace(" ", "T") + "Z"
    assert deal["lost_time"] == stored["lost_time"].replace(" ", "T") + "Z"
    assert deal["expected_close_date"] == stored["expected_close_date"]
    assert deal["visible_to"] == int(stored["visible_to"]) and deal["is_deleted"] is False
    assert not {"user_id", "owner_name", "org_name", "creator_user_id"} & set(deal)
    customs = {k: v for k, v in stored.items() if len(k) == 40}
    assert deal["custom_fields"] == customs and not set(customs) & set(deal)


def test_first_won_time_is_given_only_where_include_fields_asks_for_it(v2, pd_data):
    """v2 leaves `first_won_time` out unless `include_fields` names it (spec: GET /deals,
    /deals/archived and /deals/{id}); a field outside the spec's list is a 400."""
    won = next(d for d in _deals(pd_data) if d["status"] == "won")
    plain = v2.ok("GET", f"/deals/{won['id']}")["data"]
    assert "first_won_time" not in plain
    asked = {"include_fields": "first_won_time"}
    one = v2.ok("GET", f"/deals/{won['id']}", params=asked)["data"]
    assert one["first_won_time"] == won["first_won_time"].replace(" ", "T") + "Z"
    listed = v2.ok("GET", "/deals", params={**asked, "ids": str(won["id"])})["data"]
    assert listed[0]["first_won_time"] == one["first_won_time"]
    open_deal = next(d for d in _deals(pd_data) if d["status"] == "open")
    shown = v2.ok("GET", f"/deals/{open_deal['id']}", params=asked)["data"]
    assert "first_won_time" in shown
    assert v2.call("GET", "/deals", params={"include_fields": "user_id"}).status_code == 400


def test_a_cursor_keeps_its_place_when_deals_leave_the_list_between_pages(sandbox, v2, pd_data):
    """The cursor names the last deal read, not a position: deleting that deal and archiving
    the next one between two pages skips no other deal."""
    first = v2.ok("GET", "/deals", params={"limit": 100})
    read = [d["id"] for d in first["data"]]
    live = _live_ids(pd_data)
    last, following = read[-1], live[len(read)]
    assert v2.ok("DELETE", f"/deals/{last}")["data"] == {"id": last}
    v2.ok("PATCH", f"/deals/{following}", json={"is_archived": True})
    rest = [d["id"] for d in v2.all("/deals", first["additional_data"]["next_cursor"])]
    assert rest[0] == live[len(read) + 1]
    assert rest == [i for i in live[len(read) :] if i != following]


def test_updated_since_is_inclusive_and_updated_until_exclusive(v2, pd_data):
    stamps = sorted(d["update_time"] for d in _deals(pd_data) if d["status"] != "deleted")
    cut = stamps[len(stamps) // 2]
    rfc = cut.replace(" ", "T") + "Z"
    since = [d["update_time"] for d in v2.all("/deals", limit=500, updated_since=rfc)]
    until = [d["update_time"] for d in v2.all("/deals", limit=500, updated_until=rfc)]
    assert len(since) == sum(s >= cut for s in stamps) and rfc in since
    assert len(until) == sum(s < cut for s in stamps) and rfc not in until
    offset = cut.replace(" ", "T") + "+02:00"  # the same instant two hours earlier in UTC
    assert v2.call("GET", "/deals", params={"updated_since": offset}).status_code == 200
    assert v2.call("GET", "/deals", params={"updated_since": "yesterday"}).status_code == 400


def test_status_takes_a_list_and_deleted_lists_the_deleted_deals(v2, pd_data):
    closed = {d["id"] for d in _deals(pd_data) if d["status"] in ("won", "lost")}
    listed = list(v2.all("/deals", limit=500, status="won,lost"))
    assert {d["id"] for d in listed} == closed
    deleted = {d["id"] for d in _deals(pd_data) if d["status"] == "deleted"}
    gone = list(v2.all("/deals", status="deleted"))
    assert deleted and {d["id"] for d in gone} == deleted
    assert all(d["is_deleted"] for d in gone)
    assert v2.call("GET", "/deals", params={"status": "open,sleeping"}).status_code == 400


def test_ids_owner_org_pipeline_and_stage_filters_pick_those_deals(v2, pd_data):
    wanted = _live_ids(pd_data)[5:8]
    listed = v2.ok("GET", "/deals", params={"ids": ",".join(map(str, wanted))})["data"]
    assert [d["id"] for d in listed] == wanted
    too_many = ",".join(str(i) for i in range(1, 102))
    assert v2.call("GET", "/deals", params={"ids": too_many}).status_code == 400
    owner = _deals(pd_data)[0]["user_id"]["id"]
    owned = {d["id"] for d in _deals(pd_data) if d["user_id"]["id"] == owner}
    owned -= {d["id"] for d in _deals(pd_data) if d["status"] == "deleted"}
    assert {d["id"] for d in v2.all("/deals", limit=500, owner_id=owner)} == owned
    live = [d for d in _deals(pd_data) if d["status"] != "deleted"]
    org = next(d["org_id"]["value"] for d in live if d["org_id"])
    in_org = {d["id"] for d in live if d["org_id"] and d["org_id"]["value"] == org}
    assert {d["id"] for d in v2.all("/deals", limit=500, org_id=org)} == in_org
    staged = {d["id"] for d in live if d["stage_id"] == 3 and d["pipeline_id"] == 1}
    filters = {"pipeline_id": 1, "stage_id": 3}
    assert staged and {d["id"] for d in v2.all("/deals", limit=500, **filters)} == staged


def test_sort_by_update_time_desc_pages_newest_first_through_every_deal(v2, pd_data):
    deals = list(v2.all("/deals", limit=150, sort_by="update_time", sort_direction="desc"))
    stamps = [d["update_time"] for d in deals]
    assert stamps == sorted(stamps, reverse=True)
    assert sorted(d["id"] for d in deals) == _live_ids(pd_data)
    by_id_desc = [d["id"] for d in v2.all("/deals", limit=250, sort_direction="desc")]
    assert by_id_desc == _live_ids(pd_data)[::-1]
    added = [d["add_time"] for d in v2.all("/deals", limit=500, sort_by="add_time")]
    assert added == sorted(added)


def test_a_malformed_cursor_or_one_of_another_sort_is_a_400(v2):
    refused = v2.call("GET", "/deals", params={"cursor": "not-a-cursor"})
    assert refused.status_code == 400
    body = refused.json()
    assert body["success"] is False and "cursor" in body["error"]
    by_id = v2.ok("GET", "/deals", params={"limit": 10})["additional_data"]["next_cursor"]
    wrong = {"cursor": by_id, "sort_by": "update_time"}
    assert v2.call("GET", "/deals", params=wrong).status_code == 400
    assert v2.call("GET", "/deals", params={"sort_by": "title"}).status_code == 400


def test_archived_deals_are_listed_by_deals_archived_only(sandbox, v2, pd_data):
    deal_id = _live_ids(pd_data)[3]
    _v1_put(sandbox, deal_id, {"is_archived": True})
    assert deal_id not in {d["id"] for d in v2.all("/deals", limit=500)}
    archived = v2.ok("GET", "/deals/archived")["data"]
    assert [d["id"] for d in archived] == [deal_id] and archived[0]["is_archived"] is True
    assert archived[0]["archive_time"].endswith("Z")


def test_v2_takes_the_token_in_a_header_only(sandbox):
    base, token = sandbox.urls["pipedrive"], sandbox.tokens["pipedrive"]
    url = base + "/api/v2/pipelines"
    assert requests.get(url, headers={"x-api-token": token}, timeout=5).status_code == 200
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(url, headers=bearer, timeout=5).status_code == 200
    assert requests.get(url, params={"api_token": token}, timeout=5).status_code == 401
    v1 = requests.get(base + "/v1/pipelines", params={"api_token": token}, timeout=5)
    assert v1.status_code == 200


def test_pipelines_and_stages_in_the_v2_shape_with_is_deleted(v2, pd_data):
    pipelines = v2.ok("GET", "/pipelines")["data"]
    assert [p["id"] for p in pipelines] == sorted(
        p["id"] for p in pd_data["pipedrive"]["pipelines"]
    )
    assert set(pipelines[0]) == {
        "id", "name", "order_nr", "is_deleted", "is_deal_probability_enabled", "add_time",
        "update_time",
    }  # fmt: skip
    assert pipelines[0]["is_deleted"] is False and pipelines[0]["add_time"].endswith("Z")
    stages = v2.ok("GET", "/stages", params={"pipeline_id": 2, "sort_by": "order_nr"})["data"]
    assert {s["pipeline_id"] for s in stages} == {2}
    assert [s["order_nr"] for s in stages] == sorted(s["order_nr"] for s in stages)
    assert {"is_deal_rot_enabled", "days_to_rotten", "deal_probability"} <= set(stages[0])
    paged = list(v2.all("/stages", limit=2, sort_direction="desc"))
    assert [s["id"] for s in paged] == sorted(
        (s["id"] for s in pd_data["pipedrive"]["stages"]), reverse=True
    )


def test_organizations_page_filter_and_search_by_name(v2, pd_data):
    orgs = pd_data["pipedrive"]["organizations"]
    listed = list(v2.all("/organizations", limit=100))
    assert [o["id"] for o in listed] == sorted(o["id"] for o in orgs)
    assert isinstance(listed[0]["owner_id"], int) and listed[0]["update_time"].endswith("Z")
    picked = v2.ok("GET", "/organizations", params={"ids": "3,5"})["data"]
    assert [o["id"] for o in picked] == [3, 5]
    name = next(o["name"] for o in orgs if o["id"] == 5)
    params = {"term": name.upper(), "fields": "name", "exact_match": "true"}
    found = v2.ok("GET", "/organizations/search", params=params)
    items = found["data"]["items"]
    assert 5 in [i["item"]["id"] for i in items] and items[0]["item"]["type"] == "organization"
    assert found["additional_data"] == {"next_cursor": None}


def test_stats_name_the_v2_templates_and_a_429_fault_hits_v2_routes(sandbox, v2, pd_data):
    server = sandbox.servers["pipedrive"]
    requests.delete(sandbox.urls["pipedrive"] + "/__sandbox/stats", timeout=5)
    deal_id = _live_ids(pd_data)[0]
    v2.ok("GET", "/deals", params={"limit": 5})
    v2.ok("GET", f"/deals/{deal_id}")
    v2.ok("PATCH", f"/deals/{deal_id}", json={"title": "Renamed"})
    stats = requests.get(sandbox.urls["pipedrive"] + "/__sandbox/stats", timeout=5).json()
    assert stats["requests"] == {
        "GET /api/v2/deals": 1,
        "GET /api/v2/deals/{id}": 1,
        "PATCH /api/v2/deals/{id}": 1,
    }
    server.faults.set(Faults(rate_limit=10_000, burst429=1, retry_after=2))
    limited = v2.call("GET", "/deals")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert limited.json()["success"] is False
    assert v2.call("GET", "/deals").status_code == 200


def test_a_v2_call_spends_its_token_cost_of_the_daily_budget(sandbox, v2):
    sandbox.servers["pipedrive"].faults.set(Faults(rate_limit=10_000, daily_limit=40))
    left = [
        int(v2.call("GET", path).headers["x-daily-requests-left"]) for path in ("/deals", "/stages")
    ]
    assert left == [30, 25]  # GET /deals costs 10 tokens, GET /stages 5 (x-token-cost)
    for _ in range(5):
        v2.call("GET", "/stages")
    assert v2.call("GET", "/stages").status_code == 429


def test_pages_past_the_first_are_empty_under_that_fault_on_v2_too(sandbox, v2):
    sandbox.servers["pipedrive"].faults.set(Faults(rate_limit=10_000, pages_past_first_empty=True))
    first = v2.ok("GET", "/deals", params={"limit": 10})
    cursor = first["additional_data"]["next_cursor"]
    assert first["data"] and v2.ok("GET", "/deals", params={"cursor": cursor})["data"] == []


# -- writes ------------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_given(v2, pd_data):
    deal_id = _live_ids(pd_data)[10]
    before = v2.ok("GET", f"/deals/{deal_id}")["data"]
    after = v2.ok("PATCH", f"/deals/{deal_id}", json={"title": "Only the title", "value": 12.5})
    changed = after["data"]
    assert (changed["title"], changed["value"]) == ("Only the title", 12.5)
    assert changed["update_time"] >= before["update_time"]
    same = ("owner_id", "org_id", "stage_id", "pipeline_id", "currency", "status", "custom_fields")
    assert {k: changed[k] for k in same} == {k: before[k] for k in same}
    assert v2.ok("GET", f"/deals/{deal_id}")["data"]["title"] == "Only the title"


@pytest.mark.parametrize(
    "body",
    [
        {"value": "100"},
        {"stage_id": "2"},
        {"owner_id": 12001.5},
        {"is_archived": 1},
        {"probability": True},
        {"status": "deleted"},
        {"custom_fields": {"not-a-field-hash": "x"}},
        {"nickname": "unknown field"},
    ],
)
def test_patch_refuses_what_v2_does_not_coerce(v2, pd_data, body):
    deal_id = _live_ids(pd_data)[11]
    before = v2.ok("GET", f"/deals/{deal_id}")["data"]
    refused = v2.call("PATCH", f"/deals/{deal_id}", json=body)
    assert refused.status_code == 400
    assert refused.json()["success"] is False and refused.json()["error"]
    assert v2.ok("GET", f"/deals/{deal_id}")["data"] == before


def test_patch_moves_stage_and_owner_and_writes_custom_fields(v2, pd_data):
    deal = next(d for d in _deals(pd_data) if d["status"] == "open" and d["pipeline_id"] == 1)
    owner = next(u["id"] for u in pd_data["pipedrive"]["users"] if u["id"] != deal["user_id"]["id"])
    stage = next(s for s in pd_data["pipedrive"]["stages"] if s["pipeline_id"] == 2)
    body = {
        "stage_id": stage["id"],
        "owner_id": owner,
        "custom_fields": {PD_FIELD_CRMSYNC_ID: "ent-9"},
    }
    moved = v2.ok("PATCH", f"/deals/{deal['id']}", json=body)["data"]
    assert (moved["stage_id"], moved["pipeline_id"], moved["owner_id"]) == (stage["id"], 2, owner)
    assert moved["custom_fields"][PD_FIELD_CRMSYNC_ID] == "ent-9"
    assert moved["stage_change_time"].endswith("Z")
    won = v2.ok("PATCH", f"/deals/{deal['id']}", json={"status": "won"})["data"]
    assert won["status"] == "won" and won["won_time"] and won["close_time"] == won["won_time"]


def test_an_archived_deal_takes_no_patch_but_its_unarchiving(v2, pd_data):
    deal_id = _live_ids(pd_data)[12]
    v2.ok("PATCH", f"/deals/{deal_id}", json={"is_archived": True})
    refused = v2.call("PATCH", f"/deals/{deal_id}", json={"title": "edited once archived"})
    assert refused.status_code == 400 and "archived" in refused.json()["error"]
    assert (
        v2.call("PATCH", f"/deals/{deal_id}", json={"is_archived": False, "value": 5}).status_code
        == 400
    )
    unarchived = v2.ok("PATCH", f"/deals/{deal_id}", json={"is_archived": False})["data"]
    assert unarchived["is_archived"] is False and unarchived["archive_time"] is None
    assert (
        v2.ok("PATCH", f"/deals/{deal_id}", json={"title": "edited"})["data"]["title"] == "edited"
    )


def test_a_deleted_deal_takes_no_patch_but_its_restore(v2, pd_data):
    stored = next(d for d in _deals(pd_data) if d["status"] == "won")
    v2.ok("DELETE", f"/deals/{stored['id']}")
    assert v2.ok("GET", f"/deals/{stored['id']}")["data"]["is_deleted"] is True
    refused = v2.call("PATCH", f"/deals/{stored['id']}", json={"title": "edited once deleted"})
    assert refused.status_code == 400
    both = {"is_deleted": False, "title": "x"}
    assert v2.call("PATCH", f"/deals/{stored['id']}", json=both).status_code == 400
    restored = v2.ok("PATCH", f"/deals/{stored['id']}", json={"is_deleted": False})["data"]
    assert (restored["is_deleted"], restored["status"]) == (False, "won")
    assert restored["title"] == stored["title"]


def test_a_patch_cannot_delete_a_deal(v2, pd_data):
    """v2 migration guide: "It is no longer possible to use PATCH (former PUT) requests to
    delete an entity"."""
    deal_id = _live_ids(pd_data)[0]
    refused = v2.call("PATCH", f"/deals/{deal_id}", json={"is_deleted": True})
    assert refused.status_code == 400 and "DELETE" in refused.json()["error"]
    assert v2.ok("GET", f"/deals/{deal_id}")["data"]["is_deleted"] is False


def test_delete_answers_the_id_then_410_and_an_unknown_deal_404(v2, pd_data):
    deal_id = _live_ids(pd_data)[13]
    assert v2.ok("DELETE", f"/deals/{deal_id}") == {"success": True, "data": {"id": deal_id}}
    again = v2.call("DELETE", f"/deals/{deal_id}")
    assert again.status_code == 410 and again.json()["success"] is False
    assert v2.call("DELETE", "/deals/999999").status_code == 404
    assert v2.call("GET", "/deals/999999").status_code == 404
    assert v2.call("PATCH", "/deals/999999", json={"title": "x"}).status_code == 404


def test_post_creates_a_deal_the_deal_search_finds_by_its_link_marker(v2):
    body = {"title": "New v2", "org_id": 1, "value": 100, "currency": "EUR"}
    body["custom_fields"] = {PD_FIELD_CRMSYNC_ID: "ent-v2-1"}
    created = v2.ok("POST", "/deals", json=body)["data"]
    assert (created["title"], created["org_id"], created["status"]) == ("New v2", 1, "open")
    assert created["custom_fields"][PD_FIELD_CRMSYNC_ID] == "ent-v2-1"
    assert isinstance(created["owner_id"], int) and created["add_time"].endswith("Z")
    params = {"term": "ent-v2-1", "fields": "custom_fields", "exact_match": "true"}
    found = v2.ok("GET", "/deals/search", params=params)
    assert [i["item"]["id"] for i in found["data"]["items"]] == [created["id"]]
    assert found["data"]["items"][0]["item"]["organization"]["id"] == 1
    assert found["additional_data"] == {"next_cursor": None}


def test_post_refuses_a_deal_without_person_or_organization_or_of_an_unknown_one(v2):
    no_party = v2.call("POST", "/deals", json={"title": "No party"})
    assert no_party.status_code == 400 and no_party.json()["success"] is False
    unknown = v2.call("POST", "/deals", json={"title": "Nowhere", "org_id": 999_999})
    assert unknown.status_code == 400 and "999999" in unknown.json()["error"]
    assert v2.call("POST", "/deals", json={"org_id": 1}).status_code == 400  # no title
    assert v2.call("POST", "/deals", json={"title": "T", "org_id": "1"}).status_code == 400


def test_a_monetary_custom_field_reads_and_writes_as_value_and_currency(v2, pd_data):
    field = "ab" * 20
    deal_id = _live_ids(pd_data)[14]
    body = {"custom_fields": {field: {"value": 2300, "currency": "EUR"}}}
    written = v2.ok("PATCH", f"/deals/{deal_id}", json=body)["data"]
    assert written["custom_fields"][field] == {"value": 2300, "currency": "EUR"}
    refused = {"custom_fields": {field: {"value": "2300", "currency": "EUR"}}}
    assert v2.call("PATCH", f"/deals/{deal_id}", json=refused).status_code == 400


def test_post_organization_and_a_write_fault_apply_to_v2(sandbox, v2, pd_data):
    org = v2.ok("POST", "/organizations", json={"name": "Initech v2"})["data"]
    assert org["name"] == "Initech v2" and isinstance(org["owner_id"], int)
    assert v2.ok("GET", f"/organizations/{org['id']}")["data"]["id"] == org["id"]
    assert v2.call("POST", "/organizations", json={"name": 5}).status_code == 400
    deal_id = _live_ids(pd_data)[15]
    sandbox.servers["pipedrive"].faults.set(Faults(rate_limit=10_000, fail_ids=(str(deal_id),)))
    assert v2.call("PATCH", f"/deals/{deal_id}", json={"title": "x"}).status_code == 400


def test_the_echo_credentials_fault_quotes_the_v2_header_token(sandbox, v2):
    """v2 carries the token in `x-api-token`: the fault that makes error bodies quote the
    request's credentials (where a leak in crmsync's logs would show) must quote it too."""
    sandbox.servers["pipedrive"].faults.set(Faults(rate_limit=10_000, echo_credentials=True))
    refused = v2.call("GET", "/deals/999999")
    assert refused.status_code == 404
    assert sandbox.tokens["pipedrive"] in refused.json()["error"]


def test_an_organization_renamed_is_updated_in_v2_and_its_deals_are_not(sandbox, v2, pd_data):
    stored = next(d for d in _deals(pd_data) if d["org_id"] and d["status"] != "deleted")
    org_id = stored["org_id"]["value"]
    before = v2.ok("GET", f"/deals/{stored['id']}")["data"]
    emulator = sandbox.servers["pipedrive"].emulator
    with emulator.lock:
        renamed = emulator.store.rename_org(org_id, "Renamed Org")
    since = renamed["update_time"].replace(" ", "T") + "Z"
    changed = v2.ok("GET", "/organizations", params={"updated_since": since})["data"]
    assert [(o["id"], o["name"]) for o in changed] == [(org_id, "Renamed Org")]
    assert v2.ok("GET", f"/deals/{stored['id']}")["data"] == before
    assert stored["id"] not in {d["id"] for d in v2.all("/deals", updated_since=since)}


@pytest.fixture(scope="module")
def answers() -> dict[str, Any]:
    return yaml.safe_load(ANSWERS.read_text())


def _answer_schema(answers: dict[str, Any], operation: str) -> dict[str, Any]:
    """The operation's 200 schema as JSON Schema. The spec marks few fields nullable that
    the API answers null (won_time of an open deal), so null is allowed everywhere: what
    is checked is the type of every value given."""

    def fix(node: Any) -> Any:
        if isinstance(node, list):
            return [fix(v) for v in node]
        if not isinstance(node, dict):
            return node
        node = {k: fix(v) for k, v in node.items() if k != "nullable"}
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        return node

    return fix(answers[operation])


def test_v2_answers_validate_against_the_spec_response_schemas(v2, answers, pd_data):
    deal_id = _live_ids(pd_data)[0]
    search = {"term": "Contoso Group", "fields": "name", "exact_match": "true"}
    link = next(v for k, v in _deals(pd_data)[0].items() if len(k) == 40 and v)
    deal_search = {"term": link, "fields": "custom_fields", "exact_match": "true"}
    calls = [
        ("/deals", "get", "GET", "/deals", {}),
        ("/deals/{id}", "get", "GET", f"/deals/{deal_id}", {}),
        ("/pipelines", "get", "GET", "/pipelines", {}),
        ("/stages", "get", "GET", "/stages", {}),
        ("/organizations", "get", "GET", "/organizations", {}),
        ("/organizations/search", "get", "GET", "/organizations/search", {"params": search}),
        ("/deals/search", "get", "GET", "/deals/search", {"params": deal_search}),
        ("/deals/{id}", "patch", "PATCH", f"/deals/{deal_id}", {"json": {"title": "T"}}),
        ("/deals", "post", "POST", "/deals", {"json": {"title": "N", "org_id": 1}}),
        ("/deals/{id}", "delete", "DELETE", f"/deals/{deal_id}", {}),
        ("/dealFields", "get", "GET", "/dealFields", {}),
    ]
    for path, operation, method, url, kwargs in calls:
        body = v2.ok(method, url, **kwargs)
        jsonschema.validate(body, _answer_schema(answers, f"{operation.upper()} {path}"))
        assert body["data"], (method, url)


def test_deal_fields_list_the_custom_fields_the_account_defines_and_reads_carry_no_other(
    v2, sandbox, pd_data
):
    """A custom field key is the account's own: `GET /api/v2/dealFields` lists each field by
    its `field_code`, and an account without one (fault undefined_properties) neither lists
    it nor shows it on a deal."""
    crmsync = {PD_FIELD_SALESFORCE_ID, PD_FIELD_HUBSPOT_ID, PD_FIELD_CRMSYNC_ID}
    fields = list(v2.all("/dealFields", limit=4))
    codes = {f["field_code"] for f in fields}
    assert crmsync <= codes and {"title", "value"} <= codes
    assert len(codes) == len(fields) > 4  # paged by cursor, none twice
    assert all(f["is_custom_field"] for f in fields if f["field_code"] in crmsync)
    deal_id = next(d["id"] for d in _deals(pd_data) if d.get(PD_FIELD_SALESFORCE_ID))
    assert v2.ok("GET", f"/deals/{deal_id}")["data"]["custom_fields"][PD_FIELD_SALESFORCE_ID]

    sandbox.servers["pipedrive"].faults.set(
        Faults(rate_limit=10_000, undefined_properties=(PD_FIELD_SALESFORCE_ID,))
    )
    assert PD_FIELD_SALESFORCE_ID not in {f["field_code"] for f in v2.all("/dealFields")}
    shown = v2.ok("GET", f"/deals/{deal_id}")["data"]["custom_fields"]
    assert PD_FIELD_SALESFORCE_ID not in shown and PD_FIELD_HUBSPOT_ID in shown
    listed = v2.ok("GET", "/deals", params={"ids": str(deal_id)})["data"]
    assert [PD_FIELD_SALESFORCE_ID in d["custom_fields"] for d in listed] == [False]
