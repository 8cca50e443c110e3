"""The shared connector contract, run against the HubSpot connector and emulator."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import NativeCreate, NativeUpdate
from connectors.credentials import HubSpotToken
from connectors.errors import ApiError, AuthError, RateLimitExhausted
from connectors.hubspot import HubSpotConnector
from connectors.hubspot_paths import objects
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox, start_sandbox
from tests.connectors import contract
from tests.connectors.contract import Expectations
from tests.hubspot.conftest import FAST, settings_for

Make = Callable[..., HubSpotConnector]


def _live(hs_data: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in hs_data["hubspot"]["deals"] if not d.get("archived")]


@pytest.fixture
def exp(hs_data: dict[str, Any], sandbox: Sandbox) -> Expectations:
    live = _live(hs_data)
    companies = {
        entry["id"]
        for deal in live
        for entry in deal.get("associations", {}).get("companies", {}).get("results", ())
    }
    return Expectations(
        system="hubspot",
        deal_count=len(live),
        page_size=100,
        list_endpoint="GET /crm/objects/2026-09/deals",
        # the pipelines call that names the hs_date_entered_* properties, and the names of the
        # deals' companies (their accounts), 100 a call
        metadata_calls=1 + math.ceil(len(companies) / 100),
        secrets=(sandbox.tokens["hubspot"],),
    )


def test_full_read_costs_one_call_per_page_plus_pipelines(connector, sandbox, exp):
    assert exp.deal_count > 100  # at least two pages
    contract.assert_full_read_pages_exactly(connector, sandbox, exp)


def test_full_read_returns_stage_history_properties(connector):
    stage_ids = [s.id for p in connector.pipelines() for s in p.stages]
    deal = next(iter(connector.deals()))
    for stage_id in stage_ids:
        assert f"hs_date_entered_{stage_id}" in deal["properties"]


def test_incremental_read_returns_exactly_the_changed_deals(connector, hs_data):
    ids = [d["id"] for d in _live(hs_data)[:5]]
    since = datetime.now(UTC) - timedelta(milliseconds=5)
    time.sleep(0.01)
    connector.update_deals([NativeUpdate(i, {"description": "touched"}) for i in ids])
    contract.assert_incremental_returns_changed(connector, since, set(ids))
    assert connector.cursor() is not None and connector.cursor() >= since.isoformat()[:19]


def test_archived_deals_are_seen_as_deleted(connector, sandbox, hs_data):
    from hubspot import HubSpot

    ids = [d["id"] for d in _live(hs_data)[:3]]
    since = datetime.now(UTC) - timedelta(seconds=1)
    sdk = HubSpot(access_token=sandbox.tokens["hubspot"], host=sandbox.urls["hubspot"])
    sdk.crm.deals.batch_api.archive({"inputs": [{"id": i} for i in ids]})
    contract.assert_deleted_are_seen(connector, since, set(ids))
    assert not set(ids) & {d["id"] for d in connector.deals()}


def test_429_5xx_and_dropped_connections_are_retried(connector, sandbox, exp):
    faults = Faults(
        burst429=2,
        rate429=0.1,
        error5xx=0.15,
        drop=0.1,
        retry_after=0.01,
        seed=3,
        rate_limit=10_000,
    )
    contract.assert_transient_faults_are_retried(connector, sandbox, exp, faults)
    assert sum(connector._policy.retries().values()) >= 2


def test_ten_second_429s_without_retry_after_are_waited_out_on_the_limit_headers(
    make_connector, sandbox
):
    """Real ten-second 429s name no Retry-After: the connector waits on the rate-limit
    headers (and backoff) instead, and the read completes."""
    contract.set_faults(
        sandbox, "hubspot", Faults(enforce_rate_limit=True, rate_limit=4, rate_window=1.0)
    )
    connector = make_connector(rate_limit=(10_000, 1.0), options={"backoff_base": 0.01})
    other = make_connector()  # another client of the same account spends the window first
    for _ in range(4):
        other.check()
    for _ in range(3):
        connector.owners()
    statuses = sandbox.servers["hubspot"].stats.snapshot()["statuses"]
    assert statuses.get("429", 0) >= 1 and statuses["200"] == 4 + 6


def test_bad_token_raises_auth_error_naming_the_fix(make_connector, exp):
    bad = make_connector(credentials=HubSpotToken("not-the-token"))
    contract.assert_auth_error_is_clear(bad, exp)
    with pytest.raises(AuthError) as caught:
        bad.check()
    assert "access token" in str(caught.value)
    contract.assert_no_secret_in(str(caught.value), ["not-the-token"])


def test_call_budget_stops_the_read_cleanly(make_connector):
    contract.assert_budget_stops_cleanly(make_connector(call_budget=2), budget=2)


def test_batch_update_reports_each_failed_record(connector, sandbox, exp, hs_data):
    ids = [d["id"] for d in _live(hs_data)[:5]]
    updates = [NativeUpdate(i, {"amount": "10"}) for i in ids] + [
        NativeUpdate("404404", {"amount": "1"})
    ]
    failing = {ids[1], ids[3], "404404"}
    contract.assert_batch_failures_are_reported(connector, sandbox, exp, updates, failing)
    by_id = {r.id: r for r in connector.update_deals(updates)}
    assert by_id["404404"].code == "OBJECT_NOT_FOUND"


def test_an_update_hubspot_neither_returns_nor_names_is_not_reported_written(
    connector, sandbox, hs_data
):
    # A 207 whose errors leave an input out (reported for ids HubSpot did not update): only a
    # deal in `results` was written.
    ids = [d["id"] for d in _live(hs_data)[:3]]
    contract.set_faults(sandbox, "hubspot", Faults(rate_limit=10_000, unanswered_ids=(ids[1],)))
    results = connector.update_deals([NativeUpdate(i, {"amount": "7"}) for i in ids])
    assert [(r.id, r.ok) for r in results] == [(ids[0], True), (ids[1], False), (ids[2], True)]
    assert results[1].code == "UNCONFIRMED" and "did not confirm" in (results[1].error or "")
    amounts = {d["id"]: d["properties"]["amount"] for d in connector.read_deals(ids)}
    assert amounts[ids[0]] == amounts[ids[2]] == "7" != amounts[ids[1]]


def test_an_invalid_update_fails_alone_when_hubspot_refuses_its_whole_batch(
    connector, sandbox, hs_data
):
    ids = [d["id"] for d in _live(hs_data)[:5]]
    faults = Faults(rate_limit=10_000, batch_refused_whole=True, fail_ids=(ids[2],))
    contract.set_faults(sandbox, "hubspot", faults)
    results = connector.update_deals([NativeUpdate(i, {"amount": "9"}) for i in ids])
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert results[2].code == "VALIDATION_ERROR" and "Injected failure" in (results[2].error or "")
    amounts = {d["id"]: d["properties"]["amount"] for d in connector.read_deals(ids)}
    assert [amounts[i] == "9" for i in ids] == [True, True, False, True, True]


def test_an_invalid_create_fails_alone_when_hubspot_refuses_its_whole_batch(connector, sandbox):
    creates = [
        NativeCreate(
            f"whole-{n}",
            {
                "dealname": f"Whole {n}",
                "dealstage": "closedwon" if n == 1 else "appointmentscheduled",
                "pipeline": "renewals" if n == 1 else "default",
            },
        )
        for n in range(3)
    ]
    contract.set_faults(sandbox, "hubspot", Faults(rate_limit=10_000, batch_refused_whole=True))
    results = connector.create_deals(creates)
    assert [(r.link_id, r.ok) for r in results] == [
        ("whole-0", True),
        ("whole-1", False),
        ("whole-2", True),
    ]
    assert results[1].code == "VALIDATION_ERROR"
    found = connector.find_created(["whole-0", "whole-1", "whole-2"])
    assert found == {"whole-0": results[0].id, "whole-2": results[2].id}


def test_updates_round_trip_through_a_fresh_read(connector, hs_data):
    ids = [d["id"] for d in _live(hs_data)[:3]]
    updates = [
        NativeUpdate(i, {"amount": f"{n}.5", "dealname": f"Deal {n}"}) for n, i in enumerate(ids)
    ]
    contract.assert_updates_round_trip(connector, updates, lambda d, f: d["properties"][f])


def test_writes_go_in_batches_of_100(connector, sandbox, hs_data):
    ids = [d["id"] for d in _live(hs_data)[:130]]
    contract.clear_stats(sandbox, "hubspot")
    results = connector.update_deals([NativeUpdate(i, {"amount": "3"}) for i in ids])
    assert len(results) == 130 and all(r.ok for r in results)
    assert contract.stats(sandbox, "hubspot") == {"POST /crm/objects/2026-09/deals/batch/update": 2}


READ = "POST /crm/objects/2026-09/deals/batch/read"
ARCHIVE = "POST /crm/objects/2026-09/deals/batch/archive"


def test_deleted_deals_leave_the_read_and_are_seen_as_archived(connector, hs_data):
    ids = [d["id"] for d in _live(hs_data)[:3]]
    since = datetime.now(UTC) - timedelta(seconds=1)
    contract.assert_deletes_leave_the_live_read(connector, since, ids)


def test_deals_restored_from_the_archive_are_read_back_by_an_incremental_read(
    connector, sandbox, hs_data
):
    hubspot = sandbox.servers["hubspot"].emulator

    def restore(deal_id: str) -> None:
        with hubspot.lock:
            hubspot.store.restore(deal_id)

    ids = [d["id"] for d in _live(hs_data)[:3]]
    contract.assert_restored_deals_are_read_back(connector, ids, restore)


def test_deleting_unknown_and_archived_ids_is_not_found_and_the_rest_are_archived(
    connector, sandbox, hs_data
):
    # HubSpot's archive answers 204 for these too; the read before it is what tells.
    live = [d["id"] for d in _live(hs_data)[:3]]
    archived = [d["id"] for d in hs_data["hubspot"]["deals"] if d.get("archived")]
    contract.clear_stats(sandbox, "hubspot")
    contract.assert_missing_deletes_are_not_found(connector, live, ["404404", *archived])
    assert contract.stats(sandbox, "hubspot")[ARCHIVE] == 1
    results = connector.delete_deals(["404404"])
    assert "Could not get some DEAL objects" in (results[0].error or "")
    assert contract.stats(sandbox, "hubspot")[ARCHIVE] == 1  # nothing live: no archive call


@pytest.mark.parametrize("count", [1, 100, 101, 140])
def test_deletes_cost_one_read_and_one_archive_per_100_ids(connector, sandbox, exp, hs_data, count):
    ids = [d["id"] for d in _live(hs_data)[:count]]
    assert len(ids) == count
    calls = -(-count // 100)
    contract.assert_delete_costs(connector, sandbox, exp, ids, {READ: calls, ARCHIVE: calls})
    assert connector.calls() == {"find deals to delete": calls, "delete deals": calls}


def test_a_refused_record_fails_its_whole_archive_batch_and_only_that_batch(
    connector, sandbox, exp, hs_data
):
    ids = [d["id"] for d in _live(hs_data)[:105]]
    results = contract.assert_delete_failures_are_reported(
        connector, sandbox, exp, ids, refused={ids[3]}, failed=set(ids[:100])
    )
    failure = results[0]
    assert failure.code == "VALIDATION_ERROR" and "Injected failure" in (failure.error or "")


def test_an_archive_batch_is_retried_after_429_and_5xx(connector, sandbox, hs_data):
    ids = [d["id"] for d in _live(hs_data)[:2]]
    contract.set_faults(sandbox, "hubspot", Faults(rate_limit=10_000, burst429=2, retry_after=0.01))
    assert [r.ok for r in connector.delete_deals(ids)] == [True, True]
    assert sum(connector._policy.retries().values()) == 2
    contract.set_faults(sandbox, "hubspot", Faults(rate_limit=10_000, daily_limit=0))
    with pytest.raises(RateLimitExhausted):
        connector.delete_deals(ids)


def test_retried_create_is_found_by_its_link_marker(connector, sandbox):
    creates = [
        NativeCreate(
            f"ent-{n}",
            {"dealname": f"New {n}", "dealstage": "appointmentscheduled", "pipeline": "default"},
        )
        for n in range(3)
    ]
    contract.set_faults(sandbox, "hubspot", Faults(fail_ids=("ent-1",), rate_limit=10_000))
    results = connector.create_deals(creates)
    assert [r.link_id for r in results] == ["ent-0", "ent-1", "ent-2"]
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].id is None and results[1].error
    found = connector.find_created(["ent-0", "ent-1", "ent-2"])
    assert found == {"ent-0": results[0].id, "ent-2": results[2].id}


def test_a_link_marker_with_capitals_is_found(connector, sandbox):
    # crmsync's markers are entity ids such as "E3f...": HubSpot's IN filter matches a string
    # property only by a lowercase value, so the lookup must send them lowercased.
    contract.set_faults(sandbox, "hubspot", Faults(rate_limit=10_000))
    marker = "E0123abcdefCapitals"
    [created] = connector.create_deals(
        [NativeCreate(marker, {"dealname": "Marked", "dealstage": "appointmentscheduled"})]
    )
    assert created.ok
    assert connector.find_created([marker]) == {marker: created.id}


def test_create_with_a_stage_of_another_pipeline_fails_per_record(connector):
    results = connector.create_deals(
        [NativeCreate("x-1", {"dealname": "Bad", "dealstage": "closedwon", "pipeline": "renewals"})]
    )
    assert not results[0].ok and results[0].code == "VALIDATION_ERROR"


def test_non_retryable_error_is_typed_with_the_api_message(connector, sandbox):
    contract.set_faults(sandbox, "hubspot", Faults(rate_limit=10_000))
    with pytest.raises(ApiError) as caught:
        connector._call(
            "search deals",
            connector._unwrapped("POST", objects("deals") + "/search"),
            {"limit": 500},
        )
    assert caught.value.status == 400 and "limit" in caught.value.message
    assert caught.value.system == "hubspot"


def test_calls_are_counted_per_operation_and_connections_reused(connector, sandbox):
    list(connector.deals())
    connector.owners()
    counts = connector.calls()
    # owners: one page of active owners, one of archived ones
    assert counts["list deals"] == 2 and counts["owners"] == 2 and counts["pipelines"] == 1
    pool = connector._pool
    assert len(pool.pools) == 1  # one host pool for every call


def test_a_create_batch_whose_response_is_cut_is_not_created_twice(connector, sandbox):
    creates = [
        NativeCreate(
            f"cut-{n}",
            {"dealname": f"Cut {n}", "dealstage": "appointmentscheduled", "pipeline": "default"},
        )
        for n in range(150)
    ]
    # half the responses are cut after HubSpot stored the batch: retries must look first
    contract.set_faults(sandbox, "hubspot", Faults(drop=0.5, seed=3, rate_limit=10_000))
    results = connector.create_deals(creates)
    contract.set_faults(sandbox, "hubspot", Faults(rate_limit=10_000))
    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    stats = sandbox.servers["hubspot"].stats.snapshot()["requests"]
    assert connector._policy.retries()["create deals"] >= 1  # some responses were cut...
    assert connector.calls()["find created deals"] >= 1  # ...and the retry looked first
    assert stats["POST /crm/objects/2026-09/deals/batch/create"] == 2  # a stored batch never resent
    deals = sandbox.servers["hubspot"].emulator.dump()["deals"]
    markers = [d["properties"].get("crmsync_id") for d in deals]
    assert sorted(m for m in markers if m and m.startswith("cut-")) == sorted(
        c.link_id for c in creates
    )
    assert {r.link_id: r.id for r in results} == connector.find_created(
        [c.link_id for c in creates]
    )


def test_a_cut_create_batch_is_not_sent_again_while_search_has_not_indexed_it(connector, sandbox):
    # HubSpot's search index lags its writes: a retry that looks its creates up at once does
    # not find them. It must not send them again; they are reported unconfirmed, and a later
    # lookup (the next apply's, before it creates anything) finds them.
    creates = [
        NativeCreate(
            f"lag-{n}",
            {"dealname": f"Lag {n}", "dealstage": "appointmentscheduled", "pipeline": "default"},
        )
        for n in range(3)
    ]
    # seed 36 cuts the first answer (the create's) and none of the next five
    contract.set_faults(
        sandbox, "hubspot", Faults(drop=0.5, search_lag=0.3, seed=36, rate_limit=10_000)
    )
    results = connector.create_deals(creates)
    contract.set_faults(sandbox, "hubspot", Faults(rate_limit=10_000))
    assert connector._policy.retries()["create deals"] == 1
    assert [(r.ok, r.code) for r in results] == [(False, "UNCONFIRMED")] * 3
    stats = sandbox.servers["hubspot"].stats.snapshot()["requests"]
    assert stats["POST /crm/objects/2026-09/deals/batch/create"] == 1
    deals = sandbox.servers["hubspot"].emulator.dump()["deals"]
    markers = [d["properties"].get("crmsync_id") for d in deals]
    assert sorted(m for m in markers if m and m.startswith("lag-")) == ["lag-0", "lag-1", "lag-2"]
    time.sleep(0.3)
    assert set(connector.find_created([c.link_id for c in creates])) == {"lag-0", "lag-1", "lag-2"}


def test_a_cut_create_batch_whose_lookup_is_refused_is_not_sent_again(connector, sandbox):
    # The repeat of a cut batch looks its creates up first; a 400 of that search is no
    # refusal of the batch (which HubSpot may have stored): sending each deal again alone, as
    # for a batch refused whole, would create them twice.
    creates = [
        NativeCreate(
            f"refused-{n}",
            {"dealname": f"Refused {n}", "dealstage": "appointmentscheduled"},
        )
        for n in range(3)
    ]
    # seed 36 cuts the first answer (the create's) and none of the next five
    contract.set_faults(sandbox, "hubspot", Faults(drop=0.5, seed=36, rate_limit=10_000))
    sandbox.servers["hubspot"].emulator.search_refusal = "There was a problem with the request."
    try:
        with pytest.raises(ApiError) as caught:
            connector.create_deals(creates)
    finally:
        sandbox.servers["hubspot"].emulator.search_refusal = None
        contract.set_faults(sandbox, "hubspot", Faults(rate_limit=10_000))
    assert caught.value.operation == "find created deals"
    deals = sandbox.servers["hubspot"].emulator.dump()["deals"]
    markers = [d["properties"].get("crmsync_id") for d in deals]
    assert sorted(m for m in markers if m and m.startswith("refused-")) == [
        "refused-0",
        "refused-1",
        "refused-2",
    ]


def test_owners_include_deactivated_owners_whose_deals_still_name_them(hs_data):
    """HubSpot's owners API lists active owners unless asked for archived ones only; a deal
    keeps the id of an owner who was deactivated, so both lists are read."""
    data = {**hs_data["hubspot"]}
    gone = {**data["owners"][0], "id": "41600001", "email": "left@example.com", "archived": True}
    # The same person removed and added again: their active id is the one for that email.
    again = {**data["owners"][1], "id": "41600002", "archived": True}
    deal = data["deals"][0]
    data["owners"] = [*data["owners"], gone, again]
    data["deals"] = [
        {**deal, "properties": {**deal["properties"], "hubspot_owner_id": gone["id"]}},
        *data["deals"][1:],
    ]
    with start_sandbox({"hubspot": data}, systems=["hubspot"], faults=FAST) as running:
        connector = HubSpotConnector(settings_for(running))
        try:
            owners = {o["id"]: o for o in connector.owners()}
            owner_ids = {d["properties"].get("hubspot_owner_id") for d in connector.deals()} - {
                None
            }
        finally:
            connector.close()
    assert owners[gone["id"]]["email"] == "left@example.com"
    assert again["id"] not in owners
    assert len(owners) == len(data["owners"]) - 1
    assert owner_ids <= set(owners)
