"""The shared connector contract, run against the Pipedrive connector and emulator (API v2)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from pipedrive.client import Client

from connectors.base import NativeCreate, NativeUpdate
from connectors.credentials import PipedriveApiToken
from connectors.errors import ApiError, AuthError, PermissionDenied, RateLimitExhausted
from connectors.pipedrive import PipedriveConnector
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox, start_sandbox
from mapping.pipedrive import PD_FIELD_CRMSYNC_ID, PD_FIELD_HUBSPOT_ID, PD_FIELD_SALESFORCE_ID
from tests.connectors import contract
from tests.connectors.contract import Expectations
from tests.pipedrive.conftest import FAST, settings_for

Make = Callable[..., PipedriveConnector]


def _live(pd_data: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in pd_data["pipedrive"]["deals"] if d["status"] != "deleted"]


def _org_id(deal: dict[str, Any]) -> int | None:
    """A dataset deal's organization id (the dataset holds v1 records: {value, name})."""
    org = deal.get("org_id")
    return int(org["value"]) if isinstance(org, dict) else org


def _orgs(deals: list[dict[str, Any]]) -> set[int]:
    return {o for d in deals if (o := _org_id(d)) is not None}


@pytest.fixture
def exp(pd_data: dict[str, Any], sandbox: Sandbox) -> Expectations:
    live = _live(pd_data)
    return Expectations(
        system="pipedrive",
        deal_count=len(live),
        page_size=500,
        list_endpoint="GET /api/v2/deals",
        # one more list page of /deals/archived; both lists again `updated_since` the read
        # began (one of them /deals: see test_full_read_costs_one_call_per_500_deals); the
        # organizations' names, from their listing (500 a page)
        metadata_calls=3 + math.ceil(len(pd_data["pipedrive"]["organizations"]) / 500),
        secrets=(sandbox.tokens["pipedrive"],),
    )


def _just_before() -> datetime:
    """A `since` strictly before the next write, whatever second it lands in."""
    since = datetime.now(UTC)
    time.sleep(0.01)
    return since


def test_full_read_costs_one_call_per_500_deals_and_one_per_500_organizations(
    connector, sandbox, exp, pd_data
):
    assert exp.deal_count > 500  # at least two pages
    contract.clear_stats(sandbox, "pipedrive")
    ids = [str(d["id"]) for d in connector.deals()]
    assert len(ids) == len(set(ids)) == exp.deal_count
    assert contract.stats(sandbox, "pipedrive") == {
        # the pages, and the catch-up `updated_since` the read began
        "GET /api/v2/deals": math.ceil(exp.deal_count / 500) + 1,
        "GET /api/v2/deals/archived": 2,
        # the organizations listed: cheaper than 100 ids a call, as the deals name most of them
        "GET /api/v2/organizations": math.ceil(len(pd_data["pipedrive"]["organizations"]) / 500),
    }
    assert connector.cursor().endswith("Z")


def test_a_full_read_names_each_deals_organization(connector, pd_data):
    names = {
        str(d["id"]): d["org_id"]["name"]
        for d in _live(pd_data)
        if isinstance(d.get("org_id"), dict)
    }
    assert names
    read = {str(d["id"]): d for d in connector.deals()}
    assert {i: read[i]["org_name"] for i in names} == names
    assert all(isinstance(d["org_id"], int) for i, d in read.items() if i in names)


def test_a_deal_of_a_deleted_organization_keeps_its_account_name_read_by_id(pd_data):
    """`/organizations?ids=` leaves out a deleted organization; its deals still show its
    name (v1's deal carried it), read by id with one call, not lost from the store."""
    data = copy.deepcopy(pd_data)
    deal = next(d for d in data["pipedrive"]["deals"] if isinstance(d.get("org_id"), dict))
    org_id, name = deal["org_id"]["value"], deal["org_id"]["name"]
    for other in data["pipedrive"]["deals"]:
        if isinstance(other.get("org_id"), dict) and other["org_id"]["value"] == org_id:
            other["org_id"]["active_flag"] = False
    for org in data["pipedrive"]["organizations"]:
        if org["id"] == org_id:
            org["active_flag"] = False  # the organization is deleted
    with start_sandbox(data, systems=["pipedrive"], faults=FAST) as sandbox:
        reader = PipedriveConnector(settings_for(sandbox))
        try:
            read = {d["id"]: d for d in reader.deals()}
        finally:
            reader.close()
        assert read[deal["id"]]["org_name"] == name
        assert contract.stats(sandbox, "pipedrive")["GET /api/v2/organizations/{id}"] == 1


def test_full_read_leaves_out_deleted_deals(connector, pd_data):
    deleted = {str(d["id"]) for d in pd_data["pipedrive"]["deals"] if d["status"] == "deleted"}
    assert deleted
    assert not deleted & {str(d["id"]) for d in connector.deals()}


def test_incremental_read_returns_exactly_the_changed_deals(connector, sandbox, pd_data):
    ids = [str(d["id"]) for d in _live(pd_data)[:5]]
    since = _just_before()
    connector.update_deals([NativeUpdate(i, {"title": f"touched {i}"}) for i in ids])
    contract.clear_stats(sandbox, "pipedrive")
    contract.assert_incremental_returns_changed(connector, since, set(ids))
    assert contract.stats(sandbox, "pipedrive") == {
        "GET /api/v2/deals": 1,
        "GET /api/v2/deals/archived": 1,
        "GET /api/v2/organizations": 1,  # the names of their organizations
    }
    assert connector.cursor() >= since.strftime("%Y-%m-%dT%H:%M:%S")


def test_an_incremental_read_pages_without_losing_deals_that_share_a_second(
    connector, sandbox, pd_data
):
    """600 writes within a few seconds: `updated_since` lists them by id, a cursor page each
    500, whatever second they share."""
    ids = [str(d["id"]) for d in _live(pd_data)]
    since = _just_before()
    connector.update_deals([NativeUpdate(i, {"probability": 42}) for i in ids])
    got = [str(d["id"]) for d in connector.deals(since)]
    assert sorted(got) == sorted(ids)


def test_pipelines_read_every_page_of_stages(pd_data):
    """GET /api/v2/stages is paged (cursor): an account with more stages than one page
    still gets every pipeline's stages."""
    data = {**pd_data["pipedrive"]}
    pipelines = [
        {**data["pipelines"][0], "id": 1000 + n, "name": f"Line {n}", "order_nr": 10 + n}
        for n in range(110)
    ]
    stages = [
        {**data["stages"][0], "id": 10_000 + 5 * n + k, "pipeline_id": p["id"], "order_nr": k}
        for n, p in enumerate(pipelines)
        for k in range(5)
    ]
    data["pipelines"] = data["pipelines"] + pipelines
    data["stages"] = data["stages"] + stages
    with start_sandbox({"pipedrive": data}, systems=["pipedrive"], faults=FAST) as running:
        connector = PipedriveConnector(settings_for(running))
        try:
            read = connector.pipelines()
        finally:
            connector.close()
        assert sum(len(p.stages) for p in read) == len(data["stages"]) > 500
        assert contract.stats(running, "pipedrive")["GET /api/v2/stages"] == 2


def test_deleted_deals_are_seen_through_updated_since(connector, sandbox, pd_data):
    ids = [str(d["id"]) for d in _live(pd_data)[:3]]
    since = _just_before()
    client = Client(domain=sandbox.urls["pipedrive"])
    client.set_api_token(sandbox.tokens["pipedrive"])
    for deal_id in ids:
        client.deals.delete_deal(deal_id)
    contract.assert_deleted_are_seen(connector, since, set(ids))
    assert not set(ids) & {str(d["id"]) for d in connector.deals()}


def test_an_incremental_read_with_its_deletions_reads_each_list_once(connector, sandbox, pd_data):
    live = [str(d["id"]) for d in _live(pd_data)[:4]]
    since = _just_before()
    connector.update_deals([NativeUpdate(i, {"title": f"touched {i}"}) for i in live[:2]])
    assert all(r.ok for r in connector.delete_deals(live[2:]))
    contract.clear_stats(sandbox, "pipedrive")
    assert sorted(str(d["id"]) for d in connector.deals(since)) == sorted(live[:2])
    assert sorted(connector.deleted_deals(since)) == sorted(live[2:])
    assert contract.stats(sandbox, "pipedrive") == {
        "GET /api/v2/deals": 1,
        "GET /api/v2/deals/archived": 1,
        "GET /api/v2/organizations": 1,
    }


def test_429_5xx_and_dropped_connections_are_retried(connector, sandbox, exp):
    faults = Faults(
        burst429=2,
        rate429=0.2,
        error5xx=0.2,
        drop=0.2,
        retry_after=0.01,
        seed=6,
        rate_limit=10_000,
    )
    contract.assert_transient_faults_are_retried(connector, sandbox, exp, faults)
    assert sum(connector._policy.retries().values()) >= 2


def test_steady_read_is_paced_under_the_rolling_window_without_429(make_connector, sandbox):
    contract.set_faults(
        sandbox, "pipedrive", Faults(enforce_rate_limit=True, rate_limit=8, rate_window=0.5)
    )
    connector = make_connector(rate_limit=(8, 0.5))
    for _ in range(20):
        connector.owners()
    statuses = sandbox.servers["pipedrive"].stats.snapshot()["statuses"]
    assert statuses == {"200": 20}


def test_bad_token_raises_auth_error_naming_the_fix(make_connector, exp):
    bad = make_connector(credentials=PipedriveApiToken("not-the-token"))
    contract.assert_auth_error_is_clear(bad, exp)
    with pytest.raises(AuthError) as caught:
        bad.check()
    assert "api_token" in str(caught.value)
    contract.assert_no_secret_in(str(caught.value), ["not-the-token"])


def test_the_token_never_reaches_an_error_message(make_connector, sandbox):
    token = sandbox.tokens["pipedrive"]
    dead = make_connector(base_url="http://127.0.0.1:9", options={"max_attempts": 1})
    with pytest.raises(ApiError) as caught:
        dead.owners()
    assert "connection failed" in str(caught.value)
    contract.assert_no_secret_in(str(caught.value), [token])
    contract.assert_no_secret_in(repr(dead), [token])


def test_call_budget_stops_the_read_cleanly(make_connector):
    contract.assert_budget_stops_cleanly(make_connector(call_budget=1), budget=1)


def test_update_reports_each_failed_deal(connector, sandbox, exp, pd_data):
    ids = [str(d["id"]) for d in _live(pd_data)[:5]]
    updates = [NativeUpdate(i, {"value": 10}) for i in ids] + [NativeUpdate("404404", {"value": 1})]
    failing = {ids[1], ids[3], "404404"}
    contract.assert_batch_failures_are_reported(connector, sandbox, exp, updates, failing)
    by_id = {r.id: r for r in connector.update_deals(updates)}
    assert by_id["404404"].error == "Deal not found" and by_id["404404"].code == "404"


def test_invalid_values_fail_with_the_api_message(connector, pd_data):
    deal_id = str(_live(pd_data)[0]["id"])
    results = connector.update_deals(
        [NativeUpdate(deal_id, {"stage_id": 999}), NativeUpdate(deal_id, {"currency": "EURO"})]
    )
    assert [r.ok for r in results] == [False, False]
    assert "Stage" in results[0].error and "currency" in results[1].error


def test_updates_round_trip_through_a_fresh_read(connector, pd_data):
    ids = [str(d["id"]) for d in _live(pd_data)[:3]]
    updates = [
        NativeUpdate(i, {"value": Decimal(f"{n}1.25"), "title": f"Deal {n}", "stage_id": 3})
        for n, i in enumerate(ids)
    ]
    contract.assert_updates_round_trip(
        connector, updates, lambda d, f: Decimal(str(d[f])) if f == "value" else d[f]
    )


def test_writes_cost_one_patch_per_deal(connector, sandbox, pd_data):
    ids = [str(d["id"]) for d in _live(pd_data)[:7]]
    contract.clear_stats(sandbox, "pipedrive")
    results = connector.update_deals([NativeUpdate(i, {"probability": 3}) for i in ids])
    assert len(results) == 7 and all(r.ok for r in results)
    assert contract.stats(sandbox, "pipedrive") == {"PATCH /api/v2/deals/{id}": 7}


def test_deleted_deals_leave_the_read_and_are_seen_as_deleted(connector, pd_data):
    ids = [str(d["id"]) for d in _live(pd_data)[:3]]
    contract.assert_deletes_leave_the_live_read(connector, _just_before(), ids)


def test_deals_restored_after_a_delete_are_read_back_by_an_incremental_read(
    connector, sandbox, pd_data
):
    pipedrive = sandbox.servers["pipedrive"].emulator

    def restore(deal_id: str) -> None:
        with pipedrive.lock:
            pipedrive.store.restore(int(deal_id))

    ids = [str(d["id"]) for d in _live(pd_data)[:3]]
    contract.assert_restored_deals_are_read_back(connector, ids, restore)


def test_deleting_unknown_and_deleted_ids_is_not_found_and_the_rest_are_deleted(connector, pd_data):
    live = [str(d["id"]) for d in _live(pd_data)[:3]]
    deleted = [str(d["id"]) for d in pd_data["pipedrive"]["deals"] if d["status"] == "deleted"]
    contract.assert_missing_deletes_are_not_found(connector, live, ["404404", *deleted])
    results = connector.delete_deals(["404404", deleted[0], "not-a-number"])
    assert [r.error for r in results[:2]] == ["Deal not found", "Deal is already deleted"]
    assert (results[2].ok, results[2].code) == (False, "400")


def test_deletes_cost_one_call_per_deal(connector, sandbox, exp, pd_data):
    ids = [str(d["id"]) for d in _live(pd_data)[:7]]
    contract.assert_delete_costs(connector, sandbox, exp, ids, {"DELETE /api/v2/deals/{id}": 7})
    assert connector.calls() == {"delete deal": 7}


def test_a_refused_delete_is_reported_for_that_deal(connector, sandbox, exp, pd_data):
    ids = [str(d["id"]) for d in _live(pd_data)[:5]]
    results = contract.assert_delete_failures_are_reported(
        connector, sandbox, exp, ids, refused={ids[1], ids[4]}
    )
    assert {(r.code, r.error) for r in results if not r.ok} == {
        ("400", "Injected failure: deal rejected")
    }


def test_a_delete_is_retried_after_429_and_a_used_up_budget_raises(connector, sandbox, pd_data):
    ids = [str(d["id"]) for d in _live(pd_data)[:2]]
    contract.set_faults(
        sandbox, "pipedrive", Faults(rate_limit=10_000, burst429=1, retry_after=0.01)
    )
    assert [r.ok for r in connector.delete_deals(ids[:1])] == [True]
    assert connector.calls() == {"delete deal": 2}
    contract.set_faults(sandbox, "pipedrive", Faults(rate_limit=10_000, daily_limit=0))
    with pytest.raises(RateLimitExhausted):
        connector.delete_deals(ids[1:])


def test_retried_create_is_found_by_its_link_marker(make_connector, sandbox):
    connector = make_connector(link_field=PD_FIELD_CRMSYNC_ID)
    creates = [NativeCreate(f"ent-{n}", {"title": f"New {n}", "stage_id": 2}) for n in range(3)]
    contract.set_faults(sandbox, "pipedrive", Faults(fail_ids=("ent-1",), rate_limit=10_000))
    results = connector.create_deals(creates)
    assert [r.link_id for r in results] == ["ent-0", "ent-1", "ent-2"]
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].id is None and results[1].error
    found = connector.find_created(["ent-0", "ent-1", "ent-2"])
    assert found == {"ent-0": results[0].id, "ent-2": results[2].id}
    fresh = connector.read_deals([results[0].id])
    assert fresh[0]["custom_fields"][PD_FIELD_CRMSYNC_ID] == "ent-0"


def test_a_create_without_a_link_field_writes_no_marker_and_looks_up_none(connector, sandbox):
    """Custom field keys are made per account: without `link_field` there is no key to write
    a marker to (a made-up one names no field of a real account), and so none to look up."""
    contract.set_faults(sandbox, "pipedrive", Faults(rate_limit=10_000))
    [created] = connector.create_deals([NativeCreate("ent-9", {"title": "Copy", "stage_id": 2})])
    assert created.ok
    [deal] = connector.read_deals([str(created.id)])
    assert "ent-9" not in (deal.get("custom_fields") or {}).values()
    contract.clear_stats(sandbox, "pipedrive")
    assert connector.find_created(["ent-9"]) == {}
    assert contract.stats(sandbox, "pipedrive") == {}


def test_stage_changes_show_in_the_flow_only_when_asked(connector, sandbox, pd_data):
    deal = next(d for d in _live(pd_data) if d["status"] == "open" and d["stage_id"] != 4)
    deal_id = str(deal["id"])
    connector.update_deals([NativeUpdate(deal_id, {"stage_id": 4})])
    contract.clear_stats(sandbox, "pipedrive")
    history = connector.stage_history([deal_id])
    assert contract.stats(sandbox, "pipedrive") == {"GET /v1/deals/{id}/flow": 1}
    newest = history[deal_id][0]["data"]
    assert (newest["field_key"], newest["new_value"]) == ("stage_id", "4")


def test_pipelines_have_ordered_open_stages_with_fractional_probability(connector, pd_data):
    pipelines = connector.pipelines()
    assert [p.id for p in pipelines] == ["1", "2"]
    for pipeline in pipelines:
        orders = [s.order for s in pipeline.stages]
        assert orders == sorted(orders) and pipeline.stages
        assert not any(s.is_closed or s.is_won for s in pipeline.stages)
        assert all(s.probability is None or 0 <= s.probability <= 1 for s in pipeline.stages)
    assert pipelines[0].stages[0].probability == Decimal("0.1")


def test_owners_carry_emails(connector, pd_data):
    owners = connector.owners()
    assert len(owners) == len(pd_data["pipedrive"]["users"])
    assert all("@" in o["email"] for o in owners)


def test_read_deals_skips_missing_ids_and_reads_100_a_call(connector, sandbox, pd_data):
    """`ids` on both lists, 100 a call; the archived list only for the ids the other lacks,
    and one by id for an id in neither (a list leaves out a deal it cannot show)."""
    live = [str(d["id"]) for d in _live(pd_data)]
    ids = [*live[:250], "999999", "not-an-id"]
    contract.clear_stats(sandbox, "pipedrive")
    assert sorted(str(d["id"]) for d in connector.read_deals(ids)) == sorted(live[:250])
    assert (
        contract.stats(sandbox, "pipedrive")
        == {
            "GET /api/v2/deals": 3,
            "GET /api/v2/deals/archived": 1,  # 999999
            "GET /api/v2/deals/{id}": 1,  # 999999, in neither list: asked by id (404: gone)
            "GET /api/v2/organizations": math.ceil(len(_orgs(_live(pd_data)[:250])) / 100),
        }
    )


def test_read_deals_reads_archived_and_deleted_deals_too(connector, sandbox, pd_data):
    client = Client(domain=sandbox.urls["pipedrive"])
    client.set_api_token(sandbox.tokens["pipedrive"])
    archived, deleted, live = (str(d["id"]) for d in _live(pd_data)[:3])
    assert client.deals.update_deal(archived, {"is_archived": True})["success"]
    assert client.deals.delete_deal(deleted)["success"]
    read = {str(d["id"]): d for d in connector.read_deals([archived, deleted, live])}
    assert read[archived]["is_archived"] is True
    assert read[deleted]["is_deleted"] is True or read[deleted]["status"] == "deleted"
    assert read.keys() == {archived, deleted, live}


def test_calls_are_counted_per_operation_and_the_connection_reused(connector, sandbox):
    list(connector.deals())
    connector.owners()
    connector.pipelines()
    assert connector.calls() == {
        "list deals": 2,
        "list archived deals": 1,
        "list deals since the read began": 1,
        "list archived deals since the read began": 1,
        "list organization names": 1,
        "owners": 1,
        "pipelines": 1,
        "stages": 1,
    }
    adapter = connector._session.get_adapter(sandbox.urls["pipedrive"])
    assert len(adapter.poolmanager.pools) == 1


def test_rate_limit_headers_alone_pace_a_run_that_shares_the_quota(make_connector, sandbox):
    """Our own limit is far off; the server's x-ratelimit-remaining: 0 makes us wait the reset."""
    contract.set_faults(
        sandbox, "pipedrive", Faults(enforce_rate_limit=True, rate_limit=6, rate_window=0.5)
    )
    connector = make_connector(rate_limit=(10_000, 2.0), options={"max_attempts": 1})
    started = time.monotonic()
    for _ in range(9):
        connector.owners()
    assert time.monotonic() - started >= 0.9  # x-ratelimit-reset is whole seconds
    assert sandbox.servers["pipedrive"].stats.snapshot()["statuses"] == {"200": 9}


def test_a_create_whose_answer_was_cut_is_not_created_twice(make_connector, sandbox):
    connector = make_connector(link_field=PD_FIELD_CRMSYNC_ID)
    creates = [NativeCreate(f"cut-{n}", {"title": f"Cut {n}"}) for n in range(6)]
    contract.set_faults(sandbox, "pipedrive", Faults(drop=0.5, seed=2, rate_limit=10_000))
    try:
        results = connector.create_deals(creates)
    finally:
        contract.set_faults(sandbox, "pipedrive", Faults(rate_limit=10_000))
    assert all(r.ok for r in results)
    assert connector._policy.retries().get("create deal", 0) >= 1  # some answers were cut
    dump = requests.get(sandbox.urls["pipedrive"] + "/__sandbox/dump", timeout=5).json()
    links = [d.get(PD_FIELD_CRMSYNC_ID) for d in dump["pipedrive"]["deals"]]
    assert sorted(x for x in links if x and x.startswith("cut-")) == [c.link_id for c in creates]
    assert {r.id for r in results} == {
        str(d["id"])
        for d in dump["pipedrive"]["deals"]
        if str(d.get(PD_FIELD_CRMSYNC_ID)).startswith("cut-")
    }


def test_a_full_read_includes_archived_deals_so_they_are_not_taken_for_deleted(
    connector, sandbox, pd_data
):
    """Pipedrive leaves archived deals out of GET /api/v2/deals; a full read that missed them
    would report each as deleted (and, with push.propagate_deletes, delete its copies)."""
    client = Client(domain=sandbox.urls["pipedrive"])
    client.set_api_token(sandbox.tokens["pipedrive"])
    deal_id = _live(pd_data)[0]["id"]
    assert client.deals.update_deal(deal_id, {"is_archived": True})["success"]
    read = {d["id"]: d for d in connector.deals()}
    assert len(read) == len(_live(pd_data))
    assert read[deal_id]["is_archived"] is True


def test_an_incremental_read_sees_deals_archived_unarchived_and_deleted_since_its_cursor(
    connector, sandbox, pd_data
):
    """GET /api/v2/deals lists the deals not archived: a deal archived since the cursor would
    not be read, and stay live in the store. /deals/archived lists it (and, with status
    deleted, an archived deal deleted since)."""
    client = Client(domain=sandbox.urls["pipedrive"])
    client.set_api_token(sandbox.tokens["pipedrive"])
    archived, unarchived, deleted = (d["id"] for d in _live(pd_data)[:3])
    for deal_id in (unarchived, deleted):
        assert client.deals.update_deal(deal_id, {"is_archived": True})["success"]
    since = _just_before()
    assert client.deals.update_deal(archived, {"is_archived": True})["success"]
    assert client.deals.update_deal(unarchived, {"is_archived": False})["success"]
    assert client.deals.delete_deal(deleted)["success"]
    read = {d["id"]: d for d in connector.deals(since)}
    assert read[archived]["is_archived"] is True
    assert read[unarchived]["is_archived"] is False
    assert deleted not in read
    assert list(connector.deleted_deals(since)) == [str(deleted)]


def _read_while_one_leaves(read, sandbox, leave):
    """The ids `read` (a deal read under way) gives when the 11th deal it gave is deleted or
    archived (`leave`) after its first 400: (that deal, every id read, each once)."""
    client = Client(domain=sandbox.urls["pipedrive"])
    client.set_api_token(sandbox.tokens["pipedrive"])
    first_page = [next(read)["id"] for _ in range(400)]
    gone = first_page[10]
    if leave == "delete":
        assert client.deals.delete_deal(gone)["success"]
    else:
        assert client.deals.update_deal(gone, {"is_archived": True})["success"]
    ids = first_page + [d["id"] for d in read]
    assert len(ids) == len(set(ids))
    return gone, ids


@pytest.mark.parametrize("leave", ["delete", "archive"])
def test_a_full_read_misses_no_deal_when_an_earlier_one_leaves_the_list_mid_read(
    connector, sandbox, pd_data, leave
):
    """A deal of a page already read that is deleted (or archived) meanwhile moves no later
    deal (the cursor names the last id read); a full read that missed one would report it
    deleted."""
    live = sorted(d["id"] for d in _live(pd_data))
    _gone, ids = _read_while_one_leaves(connector.deals(), sandbox, leave)
    assert set(live) <= set(ids)


@pytest.mark.parametrize("leave", ["delete", "archive"])
def test_an_incremental_read_misses_no_deal_when_an_earlier_one_leaves_the_list_mid_read(
    connector, sandbox, pd_data, leave
):
    """A deal that left the list after its page was read moves no later deal: the next one
    is not read again until it changes, so a skipped one would stay stale."""
    live = {d["id"] for d in _live(pd_data)}
    since = min(datetime.fromisoformat(d["update_time"]) for d in _live(pd_data))
    gone, ids = _read_while_one_leaves(connector.deals(since.replace(tzinfo=UTC)), sandbox, leave)
    assert live - {gone} <= set(ids)


def test_creates_are_linked_to_the_configured_organization_as_pipedrive_requires(
    make_connector, sandbox
):
    """POST /api/v2/deals refuses a deal linked to no person or organization (changelog,
    2021-09-30); `systems.<name>.create_org_id` names the organization crmsync's copies go to."""
    contract.set_faults(sandbox, "pipedrive", Faults(rate_limit=10_000))
    create = NativeCreate("ent-party", {"title": "Copy", "stage_id": 2})
    [refused] = make_connector(options={"create_org_id": None}).create_deals([create])
    assert (refused.ok, refused.code) == (False, "400")
    assert "person" in (refused.error or "")
    [created] = make_connector(options={"create_org_id": 7}).create_deals([create])
    assert created.ok
    [deal] = make_connector().read_deals([str(created.id)])
    assert deal["org_id"] == 7


def test_a_full_read_misses_no_deal_unarchived_after_the_list_it_joins_was_read_past_it(
    connector, sandbox, pd_data
):
    """An archived deal unarchived mid-read leaves /api/v2/deals/archived for /api/v2/deals,
    read past its place already: a full read that missed it would report it deleted (and,
    with push.propagate_deletes, delete its copies). The catch-up `updated_since` the read
    began gives it."""
    client = Client(domain=sandbox.urls["pipedrive"])
    client.set_api_token(sandbox.tokens["pipedrive"])
    live = sorted(d["id"] for d in _live(pd_data))
    shelved = live[5]
    assert client.deals.update_deal(shelved, {"is_archived": True})["success"]
    read = connector.deals()
    first_page = [next(read)["id"] for _ in range(400)]  # GET /api/v2/deals, past `shelved`
    assert shelved not in first_page
    assert client.deals.update_deal(shelved, {"is_archived": False})["success"]
    ids = first_page + [d["id"] for d in read]
    assert len(ids) == len(set(ids))
    assert set(live) <= set(ids)


def test_a_deal_changed_mid_read_behind_the_read_is_read_by_the_next_pull(
    connector, sandbox, pd_data
):
    """Lists go by id: a deal of a lower id changed after its page was read is not in this
    read, while a later change of a higher id is. The cursor must not pass over the first."""
    client = Client(domain=sandbox.urls["pipedrive"])
    client.set_api_token(sandbox.tokens["pipedrive"])
    ids = sorted(int(d["id"]) for d in _live(pd_data))
    reading = connector.deals()
    next(reading)  # the first page is read
    assert client.deals.update_deal(ids[0], {"title": "Changed behind the read"})["success"]
    time.sleep(1.1)  # Pipedrive's times have whole seconds: the next change is a later one
    assert client.deals.update_deal(ids[-1], {"title": "Changed ahead of the read"})["success"]
    read = {int(d["id"]): d for d in reading}
    assert read[ids[-1]]["title"] == "Changed ahead of the read"
    cursor = datetime.fromisoformat(connector.cursor().replace("Z", "+00:00"))
    later = {int(d["id"]): d for d in connector.deals(since=cursor)}
    assert later[ids[0]]["title"] == "Changed behind the read"


def test_a_deal_the_token_may_not_see_is_no_deal_gone_to_the_re_read(connector, sandbox, pd_data):
    """A v2 list leaves out a deal the user may not see; by id it is a 403. The re-read
    before a write or a propagated delete must not take it for gone (it would be deleted
    elsewhere): it raises instead."""
    hidden, seen = (str(d["id"]) for d in _live(pd_data)[:2])
    contract.set_faults(sandbox, "pipedrive", Faults(rate_limit=10_000, hidden_deals=(hidden,)))
    assert hidden not in {str(d["id"]) for d in connector.deals()}
    with pytest.raises(PermissionDenied):
        connector.read_deals([seen, hidden])
    assert [str(d["id"]) for d in connector.read_deals([seen])] == [seen]


NAMED = {
    "extra_fields": (PD_FIELD_SALESFORCE_ID, PD_FIELD_HUBSPOT_ID),
    "link_field": PD_FIELD_CRMSYNC_ID,
}


def test_the_custom_fields_the_config_names_are_checked_by_one_fields_listing_a_run(
    make_connector, sandbox
):
    """check and a full read list the account's deal fields (once between them); an
    incremental read trusts the full read before it, and a config naming none lists none."""
    connector = make_connector(**NAMED)
    connector.check()
    list(connector.deals())
    assert connector.calls()["deal fields"] == 1
    contract.clear_stats(sandbox, "pipedrive")
    list(make_connector(**NAMED).deals(_just_before()))
    assert "GET /api/v2/dealFields" not in contract.stats(sandbox, "pipedrive")
    unnamed = make_connector()
    unnamed.check()
    assert "deal fields" not in unnamed.calls()


@pytest.mark.parametrize(
    ("undefined", "key"),
    [(PD_FIELD_HUBSPOT_ID, "external_ids"), (PD_FIELD_CRMSYNC_ID, "link_field")],
)
def test_a_custom_field_the_account_does_not_define_fails_check_and_full_read_naming_it(
    make_connector, sandbox, undefined, key
):
    contract.set_faults(
        sandbox, "pipedrive", Faults(rate_limit=10_000, undefined_properties=(undefined,))
    )
    for operation, run in (
        ("check", lambda c: c.check()),
        ("list deals", lambda c: next(c.deals())),
    ):
        connector = make_connector(**NAMED)
        with pytest.raises(PermissionDenied) as refused:
            run(connector)
        assert str(refused.value).startswith(
            f"pipedrive: {operation}: no deal field {undefined}: a field the config names ({key})"
        )
        assert "list deals" not in connector.calls()
