"""The Pipedrive emulator speaks the real v1 wire format: the official client used as documented,
responses validated against the spec's component schemas, Pipedrive's write semantics."""

from __future__ import annotations

import copy
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import yaml
from pipedrive import exceptions
from pipedrive.client import Client

from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox, start_sandbox
from connectors.sandbox.pipedrive import PipedriveEmulator
from connectors.sandbox.server import SandboxRequest
from mapping.pipedrive import PD_FIELD_CRMSYNC_ID
from tests.openapi import as_json_schema

SPEC = Path("/work/shared/specs/pipedrive_v1_deals_subset.openapi.yaml")


@pytest.fixture
def client(sandbox: Sandbox) -> Client:
    pd = Client(domain=sandbox.urls["pipedrive"])
    pd.set_api_token(sandbox.tokens["pipedrive"])
    return pd


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip("shared Pipedrive spec not present")
    return yaml.safe_load(SPEC.read_text())["components"]["schemas"]


_VALIDATORS: dict[str, Any] = {}


def _validate(instance: Any, name: str, schemas: dict[str, Any]) -> None:
    if name not in _VALIDATORS:
        schema = {"$ref": f"#/$defs/{name}", "$defs": as_json_schema(schemas)}
        _VALIDATORS[name] = jsonschema.validators.validator_for(schema)(schema)
    _VALIDATORS[name].validate(instance)


def _live_ids(pd_data: dict[str, Any]) -> list[int]:
    return [d["id"] for d in pd_data["pipedrive"]["deals"] if d["status"] != "deleted"]


def test_official_client_lists_metadata_in_the_documented_shapes(client, schemas):
    pipelines = client.pipelines.get_all_pipelines()
    _validate(pipelines, "Envelope", schemas)
    for pipeline in pipelines["data"]:
        _validate(pipeline, "Pipeline", schemas)
    stages = client.stages.get_all_stages(params={"pipeline_id": 2})["data"]
    assert stages and {s["pipeline_id"] for s in stages} == {2}
    for stage in stages:
        _validate(stage, "Stage", schemas)
    for user in client.users.get_all_users()["data"]:
        _validate(user, "User", schemas)


def test_official_client_pages_deals_with_nested_pagination(client, schemas, pd_data):
    ids: list[int] = []
    start: int | None = 0
    while start is not None:
        body = client.deals.get_all_deals(params={"start": start, "limit": 500})
        _validate(body, "Envelope", schemas)
        for deal in body["data"]:
            _validate(deal, "Deal", schemas)
        ids += [d["id"] for d in body["data"]]
        page = body["additional_data"]["pagination"]
        assert set(page) <= {"start", "limit", "more_items_in_collection", "next_start"}
        start = page.get("next_start") if page["more_items_in_collection"] else None
        assert "user" in body["related_objects"]
    assert ids == sorted(_live_ids(pd_data))


def test_limit_over_500_is_clamped_and_an_empty_page_has_null_data(client):
    body = client.deals.get_all_deals(params={"limit": 5000})
    assert len(body["data"]) == 500 and body["additional_data"]["pagination"]["limit"] == 500
    empty = client.deals.get_all_deals(params={"start": 100_000})
    assert empty["data"] is None
    assert empty["additional_data"]["pagination"]["more_items_in_collection"] is False


def test_bad_parameters_get_400_in_the_error_envelope(sandbox, client, schemas):
    with pytest.raises(exceptions.BadRequestError) as caught:
        client.deals.get_all_deals(params={"status": "sleeping"})
    body = caught.value.response.json()
    _validate(body, "Error", schemas)
    assert body["data"] is None and "status" in body["error"]
    with pytest.raises(exceptions.BadRequestError):
        client.recents.get_recent_changes(params={"items": "deal"})  # since_timestamp missing


def test_every_documented_way_to_pass_the_token_works_and_others_get_401(sandbox):
    url, token = sandbox.urls["pipedrive"] + "/v1/users", sandbox.tokens["pipedrive"]
    assert requests.get(url, headers={"x-api-token": token}, timeout=5).status_code == 200
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(url, headers=bearer, timeout=5).status_code == 200
    denied = requests.get(url, params={"api_token": "nope"}, timeout=5)
    assert denied.status_code == 401
    assert denied.json()["success"] is False and denied.json()["errorCode"] == 401
    assert denied.json()["error"] == "unauthorized access"


def test_put_moves_stage_sets_close_times_owner_object_and_flow(client, pd_data):
    deal = next(
        d for d in pd_data["pipedrive"]["deals"] if d["status"] == "open" and d["stage_id"] == 1
    )
    user = pd_data["pipedrive"]["users"][-1]
    body = client.deals.update_deal(deal["id"], {"stage_id": 3, "user_id": user["id"]})
    data = body["data"]
    assert body["success"] and data["stage_change_time"] == data["update_time"]
    assert data["update_time"] > deal["update_time"]
    assert data["user_id"]["id"] == user["id"] and data["user_id"]["email"] == user["email"]
    won = client.deals.update_deal(deal["id"], {"status": "won"})["data"]
    assert won["won_time"] and won["close_time"] == won["won_time"] and won["active"] is False
    flow = client.deals.get_deal_updates(deal["id"])["data"]
    assert [(f["data"]["field_key"], f["data"]["new_value"]) for f in flow[:2]] == [
        ("status", "won"),
        ("stage_id", "3"),
    ]


def test_put_validates_stage_currency_status_and_missing_deals(client, pd_data):
    deal_id = _live_ids(pd_data)[0]
    for bad in ({"stage_id": 999}, {"currency": "XYZ"}, {"status": "paused"}, {"value": "ten"}):
        with pytest.raises(exceptions.BadRequestError):
            client.deals.update_deal(deal_id, bad)
    with pytest.raises(exceptions.NotFoundError) as caught:
        client.deals.update_deal(10**9, {"title": "x"})
    assert str(caught.value) == "Deal not found"


def test_recents_follow_write_order_within_one_second(client, pd_data):
    ids = _live_ids(pd_data)[:6]
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    for deal_id in reversed(ids):
        client.deals.update_deal(deal_id, {"title": f"t{deal_id}"})
    body = client.recents.get_recent_changes(params={"since_timestamp": since, "items": "deal"})
    assert [item["id"] for item in body["data"]] == list(reversed(ids))
    extra = body["additional_data"]
    assert extra["since_timestamp"] == since
    assert extra["last_timestamp_on_page"] == body["data"][-1]["data"]["update_time"]


def test_stages_page_with_start_and_limit_like_deals(client, pd_data):
    """GET /v1/stages takes start/limit (default 100) and answers additional_data.pagination."""
    total = len(pd_data["pipedrive"]["stages"])
    assert total > 2
    first = client.stages.get_all_stages(params={"limit": 2})
    assert len(first["data"]) == 2
    assert first["additional_data"]["pagination"] == {
        "start": 0, "limit": 2, "more_items_in_collection": True, "next_start": 2
    }  # fmt: skip
    rest = client.stages.get_all_stages(params={"start": 2, "limit": 500})
    assert rest["additional_data"]["pagination"]["more_items_in_collection"] is False
    ids = [s["id"] for s in first["data"] + rest["data"]]
    assert sorted(ids) == sorted(s["id"] for s in pd_data["pipedrive"]["stages"])


def test_recents_pagination_has_no_next_start_as_the_v1_spec_documents(client, pd_data):
    """Pipedrive's v1 spec gives /recents start, limit and more_items_in_collection only
    (schema and example), unlike /deals: a client must count the page itself."""
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    for deal_id in _live_ids(pd_data)[:3]:
        client.deals.update_deal(deal_id, {"title": f"t{deal_id}"})
    params = {"since_timestamp": since, "items": "deal", "limit": 2}
    page = client.recents.get_recent_changes(params=params)["additional_data"]["pagination"]
    assert page == {"start": 0, "limit": 2, "more_items_in_collection": True}


def test_deleted_deals_leave_the_list_but_show_in_recents_and_status_deleted(client, pd_data):
    deal_id = _live_ids(pd_data)[0]
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    assert client.deals.delete_deal(deal_id)["success"]
    listed = {d["id"] for d in client.deals.get_all_deals(params={"limit": 500})["data"]}
    assert deal_id not in listed
    deleted = client.deals.get_all_deals(params={"status": "deleted"})["data"]
    assert deal_id in {d["id"] for d in deleted}
    recents = client.recents.get_recent_changes(params={"since_timestamp": since})["data"]
    assert [(r["id"], r["data"]["status"]) for r in recents] == [(deal_id, "deleted")]


def test_a_restored_deal_has_its_status_again_and_shows_in_recents(sandbox, client, pd_data):
    """The app's Restore of a deleted deal: the same id, the status it had before (its won
    time kept), no longer deleted, with a fresh update_time."""
    won = next(d for d in pd_data["pipedrive"]["deals"] if d["status"] == "won")
    assert client.deals.delete_deal(won["id"])["success"]
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    emulator = sandbox.servers["pipedrive"].emulator
    with emulator.lock:
        emulator.store.restore(won["id"])
    shown = client.deals.get_deal(won["id"])["data"]
    assert (shown["status"], shown["deleted"], shown["won_time"]) == ("won", False, won["won_time"])
    assert shown["update_time"] >= since
    listed = {d["id"] for d in client.deals.get_all_deals(params={"limit": 500})["data"]}
    assert won["id"] in listed
    recents = client.recents.get_recent_changes(params={"since_timestamp": since})["data"]
    assert [(r["id"], r["data"]["status"]) for r in recents] == [(won["id"], "won")]


def test_a_deleted_deal_takes_no_edit_but_its_restore(client, pd_data):
    """Since 2024-03-18 PUT /deals/{id} edits no field of a deleted deal except restoring it
    (changelog "update to the behavior of PUT deals/{id} endpoint for soft-deleted deals")."""
    deal_id = _live_ids(pd_data)[0]
    assert client.deals.delete_deal(deal_id)["success"]
    with pytest.raises(exceptions.BadRequestError):
        client.deals.update_deal(deal_id, {"title": "edited after its delete"})
    with pytest.raises(exceptions.BadRequestError):
        client.deals.update_deal(deal_id, {"status": "open", "title": "restored and edited"})
    assert client.deals.get_deal(deal_id)["data"]["status"] == "deleted"
    restored = client.deals.update_deal(deal_id, {"status": "open"})["data"]
    assert (restored["status"], restored["deleted"]) == ("open", False)
    edited = client.deals.update_deal(deal_id, {"title": "edited once restored"})["data"]
    assert edited["title"] == "edited once restored"


def test_deleting_twice_is_410_an_unknown_deal_404_and_a_refused_one_400(sandbox, client, pd_data):
    first, second = _live_ids(pd_data)[:2]
    assert client.deals.delete_deal(first) == {"success": True, "data": {"id": first}}
    shown = client.deals.get_deal(first)["data"]
    assert (shown["status"], shown["deleted"], shown["active"]) == ("deleted", True, False)
    with pytest.raises(exceptions.GoneError):
        client.deals.delete_deal(first)
    with pytest.raises(exceptions.NotFoundError):
        client.deals.delete_deal(404404)
    sandbox.servers["pipedrive"].faults.set(Faults(rate_limit=10_000, fail_ids=(str(second),)))
    with pytest.raises(exceptions.BadRequestError):
        client.deals.delete_deal(second)
    assert client.deals.get_deal(second)["data"]["status"] != "deleted"


def test_recents_only_reach_back_the_configured_window(sandbox, client):
    emulator = sandbox.servers["pipedrive"].emulator
    params = {"since_timestamp": "2000-01-01 00:00:00", "items": "deal"}
    assert client.recents.get_recent_changes(params=params)["data"] is None  # all 90+ days old
    emulator.recents_window = timedelta(days=365 * 30)
    assert len(client.recents.get_recent_changes(params=params)["data"]) == 100


def test_sort_by_update_time_desc_lists_newest_first(client):
    deals = client.deals.get_all_deals(params={"sort": "update_time DESC", "limit": 50})["data"]
    stamps = [d["update_time"] for d in deals]
    assert stamps == sorted(stamps, reverse=True)


def test_sort_by_several_fields_orders_the_deals_of_one_second_by_the_next(client, pd_data):
    # "field names with optional ASC/DESC, comma-separated" (v1 spec): by update_time alone
    # the deals of one second come in the order they changed, here against their ids.
    for deal_id in _live_ids(pd_data)[:6]:
        client.deals.update_deal(deal_id, {"title": f"t{deal_id}"})
    params = {"sort": "update_time DESC, id DESC", "limit": 50}
    deals = client.deals.get_all_deals(params=params)["data"]
    keys = [(d["update_time"], d["id"]) for d in deals]
    assert keys == sorted(keys, reverse=True)
    with pytest.raises(exceptions.BadRequestError):
        client.deals.get_all_deals(params={"sort": "update_time DESC, title"})


def test_create_accepts_custom_fields_and_search_finds_them(client):
    body = {"title": "New", "org_id": 1, PD_FIELD_CRMSYNC_ID: "ent-77"}
    created = client.deals.create_deal(body)["data"]
    assert created[PD_FIELD_CRMSYNC_ID] == "ent-77" and created["status"] == "open"
    params = {"term": "ent-77", "fields": "custom_fields", "exact_match": "true"}
    items = client.deals.search_deals(params=params)["data"]["items"]
    assert [i["item"]["id"] for i in items] == [created["id"]]


def test_rolling_window_answers_429_with_retry_after_and_limit_headers(sandbox, client):
    sandbox.servers["pipedrive"].faults.set(
        Faults(enforce_rate_limit=True, rate_limit=3, rate_window=5)
    )
    for _ in range(3):
        client.users.get_all_users()
    with pytest.raises(exceptions.TooManyRequestsError) as caught:
        client.users.get_all_users()
    headers = caught.value.response.headers
    assert float(headers["Retry-After"]) > 0
    assert headers["x-ratelimit-limit"] == "3" and headers["x-ratelimit-remaining"] == "0"
    assert "x-daily-requests-left" in headers


def test_dump_shows_writes_and_reset_restores_the_dataset(sandbox, client, pd_data):
    deal_id = _live_ids(pd_data)[0]
    client.deals.update_deal(deal_id, {"title": "Changed"})
    dumped = requests.get(sandbox.urls["pipedrive"] + "/__sandbox/dump", timeout=5).json()
    assert next(d for d in dumped["pipedrive"]["deals"] if d["id"] == deal_id)["title"] == "Changed"
    requests.post(sandbox.urls["pipedrive"] + "/__sandbox/reset", timeout=5)
    original = next(d for d in pd_data["pipedrive"]["deals"] if d["id"] == deal_id)
    assert client.deals.get_deal(deal_id)["data"]["title"] == original["title"]
    assert original["title"] != "Changed"  # the loaded dataset itself was never mutated


def test_a_page_of_100_is_served_in_about_a_millisecond(pd_data):
    emulator = PipedriveEmulator(pd_data["pipedrive"], "t")
    emulator._list(SandboxRequest("GET", "/v1/deals", {"limit": ["100"]}, {}, b""))  # warm
    request = SandboxRequest("GET", "/v1/deals", {"start": ["400"], "limit": ["100"]}, {}, b"")
    started = time.perf_counter()
    for _ in range(50):
        emulator._list(request)
    assert (time.perf_counter() - started) / 50 < 0.005


def test_a_deal_value_beyond_64_bits_is_served_not_a_dropped_connection(
    pd_data: dict[str, Any],
) -> None:
    """The emulator's fast JSON encoder cannot write integers past 64 bits; a page holding one
    went out as a closed connection, and every pull of that CRM failed after its retries."""
    data = copy.deepcopy(pd_data)
    data["pipedrive"]["deals"] = data["pipedrive"]["deals"][:3]
    data["pipedrive"]["deals"][0]["value"] = 10**25
    with start_sandbox(data, systems=["pipedrive"], faults=Faults(rate_limit=10_000)) as running:
        pd = Client(domain=running.urls["pipedrive"])
        pd.set_api_token(running.tokens["pipedrive"])
        deals = pd.deals.get_all_deals(params={"limit": 10})["data"]
    assert (len(deals), deals[0]["value"]) == (3, 10**25)


def test_archived_deals_leave_the_list_and_are_listed_by_deals_archived(client, pd_data):
    """GET /v1/deals "Returns all not archived deals" (v1 spec); GET /v1/deals/archived the
    others. An archived deal is still a deal: readable by id, in its status."""
    deal_id = _live_ids(pd_data)[0]
    archived = client.deals.update_deal(deal_id, {"is_archived": True})["data"]
    assert archived["is_archived"] is True and archived["archive_time"]
    listed = {d["id"] for d in client.deals.get_all_deals(params={"limit": 500})["data"]}
    assert deal_id not in listed
    url = client.BASE_URL + "deals/archived"
    assert [d["id"] for d in client._get(url, params={"limit": 500})["data"]] == [deal_id]
    assert client.deals.get_deal(deal_id)["data"]["is_archived"] is True
    client.deals.update_deal(deal_id, {"is_archived": False})
    assert client._get(url)["data"] is None


def test_an_archived_deal_takes_no_edit_but_its_unarchiving(sandbox, client, pd_data):
    """Since 2025-07-15 archived deals "will not be editable through the API" (PUT
    /v1/deals/{id}; changelog "Breaking change: archived deals and leads will not be returned
    in existing endpoints and will not be editable"); the archive flag itself stays writable
    (`is_archived` in the spec's update body), and DELETE is not among the changed endpoints.
    The refusal's status and wording are not documented: a 400 in Pipedrive's error body."""
    deal_id, other = _live_ids(pd_data)[:2]
    client.deals.update_deal(deal_id, {"is_archived": True})
    url = f"{sandbox.urls['pipedrive']}/v1/deals/{deal_id}"
    token = {"api_token": sandbox.tokens["pipedrive"]}
    refused = requests.put(url, params=token, json={"title": "edited once archived"}, timeout=5)
    assert refused.status_code == 400
    body = refused.json()
    assert body["success"] is False and "archived" in body["error"]
    with pytest.raises(exceptions.BadRequestError):
        client.deals.update_deal(deal_id, {"is_archived": False, "value": 5})
    assert client.deals.get_deal(deal_id)["data"]["title"] != "edited once archived"
    unarchived = client.deals.update_deal(deal_id, {"is_archived": False})["data"]
    assert unarchived["is_archived"] is False
    edited = client.deals.update_deal(deal_id, {"title": "edited once unarchived"})["data"]
    assert edited["title"] == "edited once unarchived"
    client.deals.update_deal(other, {"is_archived": True})
    assert client.deals.delete_deal(other)["success"]
    assert client.deals.get_deal(other)["data"]["status"] == "deleted"


def test_a_deal_created_without_person_or_organization_is_refused(sandbox, client):
    """Since 2021-09-30 POST /v1/deals needs person_id or org_id (Pipedrive changelog
    "Breaking bug fix in POST /deals endpoint"); the sandbox enforces it unless its fault
    `deal_needs_party` is turned off."""
    with pytest.raises(exceptions.BadRequestError):
        client.deals.create_deal({"title": "No party"})
    created = client.deals.create_deal({"title": "With org", "org_id": 7})["data"]
    assert created["org_id"]["value"] == 7  # an id written, the organization's object read
    sandbox.servers["pipedrive"].faults.set(Faults(deal_needs_party=False))
    assert client.deals.create_deal({"title": "No party"})["data"]["org_id"] is None
