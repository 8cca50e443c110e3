"""The shared connector contract and Salesforce's own duties, against the TLS sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from connectors.base import NativeCreate, NativeUpdate
from connectors.credentials import (
    SalesforceClientCredentials,
    SalesforcePassword,
    SalesforceSession,
)
from connectors.errors import ApiError, AuthError, RateLimitExhausted
from connectors.salesforce import SalesforceConnector
from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox, start_sandbox
from connectors.sandbox.salesforce import SANDBOX_CONSUMER_KEY, SANDBOX_USERNAME
from tests.connectors import contract
from tests.connectors.contract import Expectations
from tests.salesforce.conftest import FAST, settings_for
from tests.salesforce.sf_dataset import DELETED, LIVE, TRICKY_NAME, dataset

Make = Callable[..., SalesforceConnector]
QUERY = "GET /services/data/{version}/query"
MORE = "GET /services/data/{version}/query/{locator}"
OWNER_EMAILS = {f"user{i}@example.com" for i in (1, 2, 3)}  # the users of sf_dataset


@pytest.fixture
def exp(sandbox: Sandbox) -> Expectations:
    return Expectations(
        system="salesforce",
        deal_count=LIVE,
        page_size=2000,
        list_endpoint=QUERY,
        more_endpoint=MORE,
        metadata_calls=1,  # describe: does this org have CurrencyIsoCode?
        secrets=(sandbox.tokens["salesforce"],),
    )


def test_full_read_costs_one_call_per_2000_deals_plus_describe(connector, sandbox, exp):
    contract.assert_full_read_pages_exactly(connector, sandbox, exp)
    assert connector.calls() == {"describe": 1, "deals": 3}
    deal = next(iter(connector.deals()))
    assert "attributes" not in deal and deal["CurrencyIsoCode"] == "USD"


def test_incremental_read_returns_exactly_the_changed_deals(connector):
    first = list(connector.deals())
    cursor = connector.cursor()
    assert cursor == "2024-05-04T02:59:00Z"  # the newest SystemModstamp of the dataset
    ids = [d["Id"] for d in first[:5]]
    results = connector.update_deals([NativeUpdate(i, {"NextStep": "touched"}) for i in ids])
    assert all(r.ok for r in results)
    contract.assert_incremental_returns_changed(connector, datetime.fromisoformat(cursor), set(ids))
    newer = connector.cursor()
    assert newer is not None and newer > cursor
    # Sub-second stamps: a cursor inside a second still excludes what it already covered.
    contract.assert_incremental_returns_changed(connector, datetime.fromisoformat(newer), set())


def test_deleted_deals_are_seen_via_query_all(connector):
    since = datetime(2024, 1, 1, tzinfo=UTC)
    deleted = set(connector.deleted_deals(since))
    assert len(deleted) == DELETED
    contract.assert_deleted_are_seen(connector, since, deleted)
    assert set(connector.deleted_deals(datetime.now(UTC))) == set()


def test_429_5xx_and_dropped_connections_are_retried(connector, sandbox, exp):
    faults = Faults(
        rate429=0.3, error5xx=0.2, drop=0.2, retry_after=0.01, seed=3, rate_limit=10_000
    )
    contract.assert_transient_faults_are_retried(connector, sandbox, exp, faults)
    # Every attempt, retried or not, is counted, exactly as the server saw it.
    assert sum(connector.calls().values()) == sum(contract.stats(sandbox, "salesforce").values())
    assert connector.calls()["deals"] > 3


def test_bad_session_raises_auth_error_without_the_secret(make_connector, exp):
    bad = make_connector(credentials=SalesforceSession("00Dbogus!secret-value"))
    contract.assert_auth_error_is_clear(
        bad, Expectations(**{**exp.__dict__, "secrets": ("00Dbogus!secret-value",)})
    )


def test_a_session_id_works_against_the_orgs_instance_url_without_base_url(make_connector, sandbox):
    """A session id belongs to one org: its instance_url (the config's, for report links) is
    where the API is, as simple-salesforce takes it; base_url is only an override."""
    org = make_connector(base_url=None, instance_url=sandbox.urls["salesforce"])
    assert [p.id for p in org.pipelines()] == ["default"]
    lost = make_connector(base_url=None, instance_url=None)
    with pytest.raises(AuthError, match="session-id auth needs instance_url"):
        lost.check()


def test_expired_session_id_tells_the_user_what_to_do(connector, sandbox):
    contract.set_faults(sandbox, "salesforce", Faults(rate_limit=10_000, expire_after=1))
    connector.check()
    with pytest.raises(AuthError) as caught:
        connector.owners()
    assert "provide a fresh session id or use password/client-credentials auth" in str(caught.value)


@pytest.mark.parametrize("mode", ["password", "client_credentials"])
def test_login_auth_renews_an_expired_session_once_and_repeats_the_call(
    make_connector, sandbox, mode
):
    token = sandbox.tokens["salesforce"]
    credentials = (
        SalesforcePassword(SANDBOX_USERNAME, token)
        if mode == "password"
        else SalesforceClientCredentials(SANDBOX_CONSUMER_KEY, token)
    )
    connector = make_connector(credentials=credentials)
    contract.set_faults(sandbox, "salesforce", Faults(rate_limit=10_000, expire_after=2))
    ids = [d["Id"] for d in connector.deals()]
    assert len(ids) == LIVE
    assert connector.calls()["login"] == 2  # the first login and one renewal
    assert connector.calls()["deals"] == 4  # three pages and the one refused as expired
    contract.assert_no_secret_in(repr(connector), [token])


def test_wrong_password_is_an_auth_error_naming_the_login(make_connector, sandbox):
    connector = make_connector(credentials=SalesforcePassword(SANDBOX_USERNAME, "wrong-secret"))
    with pytest.raises(AuthError) as caught:
        connector.check()
    assert caught.value.operation == "login" and "authentication failure" in str(caught.value)
    contract.assert_no_secret_in(str(caught.value), ["wrong-secret", sandbox.tokens["salesforce"]])


def test_call_budget_stops_cleanly(make_connector):
    contract.assert_budget_stops_cleanly(make_connector(call_budget=2), budget=2)


def test_used_up_daily_allowance_stops_without_hammering(connector, sandbox):
    contract.set_faults(sandbox, "salesforce", Faults(rate_limit=10_000, daily_limit=2))
    sandbox.servers["salesforce"].stats.clear()
    with pytest.raises(RateLimitExhausted) as caught:
        list(connector.deals())
    assert "daily API allowance used up (2/2" in str(caught.value)
    assert contract.stats(sandbox, "salesforce") == {
        "GET /services/data/{version}/sobjects/Opportunity/describe": 1,
        QUERY: 1,
    }


def test_a_403_request_limit_is_not_retried(connector, sandbox):
    contract.set_faults(sandbox, "salesforce", Faults(rate_limit=10_000, daily_limit=0))
    with pytest.raises(RateLimitExhausted) as caught:
        connector.owners()
    assert "REQUEST_LIMIT_EXCEEDED" in str(caught.value)
    assert sum(contract.stats(sandbox, "salesforce").values()) == 1


def test_a_403_concurrent_request_limit_is_retried_not_taken_for_the_daily_cap(connector, sandbox):
    """Salesforce refuses requests over its concurrent limit with the daily cap's 403
    REQUEST_LIMIT_EXCEEDED; only the message (ConcurrentRequests) tells that it passes."""
    contract.set_faults(sandbox, "salesforce", Faults(rate_limit=10_000, burst429=2))
    assert {o["Email"] for o in connector.owners()} == OWNER_EMAILS  # once let through
    assert connector.calls()["owners"] == 3
    assert contract.stats(sandbox, "salesforce") == {QUERY: 3}


def test_batch_with_failing_records_reports_each(connector, sandbox, exp):
    ids = [d["Id"] for _, d in zip(range(250), connector.deals(), strict=False)]
    updates = [NativeUpdate(i, {"NextStep": "x"}) for i in ids] + [
        NativeUpdate("bogus", {"Amount": 1})
    ]
    sandbox.servers["salesforce"].stats.clear()
    contract.assert_batch_failures_are_reported(
        connector, sandbox, exp, updates[:-1], failing={ids[3], ids[220]}
    )
    assert contract.stats(sandbox, "salesforce") == {
        "PATCH /services/data/{version}/composite/sobjects": 2
    }
    results = connector.update_deals(updates[-1:])
    assert (results[0].ok, results[0].code) == (False, "MALFORMED_ID")


DELETE = "DELETE /services/data/{version}/composite/sobjects"


def _live_ids(connector, count):
    return [d["Id"] for _, d in zip(range(count), connector.deals(), strict=False)]


def test_deleted_deals_leave_the_read_and_are_seen_as_deleted(connector):
    ids = _live_ids(connector, 3)
    since = datetime.now(UTC)
    time.sleep(0.01)  # the deletes' SystemModstamp (milliseconds) must fall after `since`
    contract.assert_deletes_leave_the_live_read(connector, since, ids)
    assert connector.calls()["delete_deals"] == 1


def test_deals_undeleted_from_the_recycle_bin_are_read_back_by_an_incremental_read(
    connector, sandbox
):
    salesforce = sandbox.servers["salesforce"].emulator

    def undelete(deal_id: str) -> None:
        with salesforce.lock:
            salesforce.store.undelete(deal_id)

    contract.assert_restored_deals_are_read_back(connector, _live_ids(connector, 3), undelete)


def test_deleting_unknown_and_recycled_ids_is_not_found_and_the_rest_are_deleted(connector):
    live = _live_ids(connector, 3)
    recycled = next(iter(connector.deleted_deals(datetime(2024, 1, 1, tzinfo=UTC))))
    missing = ["006000000000999ZZZ", recycled]
    contract.assert_missing_deletes_are_not_found(connector, live, missing)
    results = connector.delete_deals([*missing, "not-an-id"])
    assert [r.error for r in results[:2]] == ["invalid cross reference id", "entity is deleted"]
    assert (results[2].ok, results[2].code) == (False, "MALFORMED_ID")


@pytest.mark.parametrize("count", [1, 200, 201, 450])
def test_deletes_cost_one_call_per_200_ids(connector, sandbox, exp, count):
    ids = _live_ids(connector, count)
    calls = -(-count // 200)
    contract.assert_delete_costs(connector, sandbox, exp, ids, {DELETE: calls})
    assert connector.calls()["delete_deals"] == calls


def test_a_delete_refused_for_one_record_is_reported_for_that_record(connector, sandbox, exp):
    ids = _live_ids(connector, 205)
    results = contract.assert_delete_failures_are_reported(
        connector, sandbox, exp, ids, refused={ids[1], ids[203]}
    )
    assert {r.code for r in results if not r.ok} == {"FIELD_CUSTOM_VALIDATION_EXCEPTION"}


def test_a_delete_retries_429_and_5xx_and_stops_typed_when_out_of_allowance(connector, sandbox):
    ids = _live_ids(connector, 2)
    contract.set_faults(
        sandbox, "salesforce", Faults(rate_limit=10_000, burst429=1, retry_after=0.01)
    )
    assert [r.ok for r in connector.delete_deals(ids[:1])] == [True]
    assert connector.calls()["delete_deals"] == 2
    contract.set_faults(sandbox, "salesforce", Faults(rate_limit=10_000, daily_limit=0))
    with pytest.raises(RateLimitExhausted):
        connector.delete_deals(ids[1:])


def test_writes_round_trip_through_a_fresh_read(connector):
    ids = [d["Id"] for _, d in zip(range(3), connector.deals(), strict=False)]
    updates = [
        NativeUpdate(ids[0], {"StageName": "Negotiation", "Amount": 1234.5}),
        NativeUpdate(ids[1], {"CloseDate": "2025-01-31", "Name": "Renamed"}),
        NativeUpdate(ids[2], {"StageName": "Closed Lost"}),
    ]
    contract.assert_updates_round_trip(connector, updates, lambda record, field: record[field])
    fresh = {d["Id"]: d for d in connector.read_deals(ids)}
    assert (fresh[ids[0]]["Probability"], fresh[ids[0]]["IsClosed"]) == (75, False)
    assert (fresh[ids[2]]["IsClosed"], fresh[ids[2]]["IsWon"]) == (True, False)
    history = list(connector.stage_history(ids))
    assert [h["StageName"] for h in history if h["OpportunityId"] == ids[0]] == ["Negotiation"]
    assert connector.calls()["stage_history"] == 1


def test_creates_carry_the_link_marker_and_are_found_again(connector, sandbox):
    marker = TRICKY_NAME + " #1"  # quotes and backslashes survive SOQL quoting
    creates = [
        NativeCreate(
            marker, {"Name": "Brand new", "StageName": "Proposal", "CloseDate": "2025-03-01"}
        ),
        NativeCreate("ent-2", {"Name": "No close date", "StageName": "Proposal"}),
    ]
    results = connector.create_deals(creates)
    assert results[0].ok and results[0].id and results[0].link_id == marker
    assert (results[1].ok, results[1].code, results[1].link_id) == (
        False,
        "REQUIRED_FIELD_MISSING",
        "ent-2",
    )
    assert connector.find_created([marker, "ent-2"]) == {marker: results[0].id}


NEW = {"Name": "Copy", "StageName": "Proposal", "CloseDate": "2025-03-01", "Amount": 10}


def test_a_create_keeps_its_currency_code_in_a_multi_currency_org(connector, sandbox):
    """Left out, the code would be the API user's personal currency, not the one meant."""
    emulator = sandbox.servers["salesforce"].emulator
    with emulator.lock:
        me = next(u for u in emulator.store.tables["User"] if u["Id"] == emulator.store.api_user)
        me["DefaultCurrencyIsoCode"] = "EUR"
    (made,) = connector.create_deals([NativeCreate("ent-1", {**NEW, "CurrencyIsoCode": "USD"})])
    assert made.ok and emulator.store.by_id[made.id]["CurrencyIsoCode"] == "USD"


def test_a_single_currency_org_takes_creates_in_the_configured_currency_only():
    """It has no CurrencyIsoCode: the configured code is left out, any other is refused."""
    with start_sandbox(
        dataset(5, 0, currency=False), systems=["salesforce"], faults=FAST
    ) as single:
        connector = SalesforceConnector(settings_for(single, currency="EUR"))
        try:
            kept, foreign = connector.create_deals(
                [
                    NativeCreate("ent-1", {**NEW, "CurrencyIsoCode": "EUR"}),
                    NativeCreate("ent-2", {**NEW, "CurrencyIsoCode": "USD"}),
                ]
            )
        finally:
            connector.close()
        store = single.servers["salesforce"].emulator.store
    assert kept.ok and "CurrencyIsoCode" not in store.by_id[kept.id]
    assert (foreign.ok, foreign.code, foreign.link_id) == (False, "INVALID_FIELD", "ent-2")
    assert connector.calls()["describe"] == 1


def test_a_create_whose_response_was_lost_is_not_duplicated(connector, sandbox):
    contract.set_faults(sandbox, "salesforce", Faults(rate_limit=10_000, drop=1.0, seed=1))
    creates = [
        NativeCreate(
            f"ent-{i}", {"Name": f"N{i}", "StageName": "Proposal", "CloseDate": "2025-03-01"}
        )
        for i in range(3)
    ]
    with pytest.raises(ApiError):
        connector.create_deals(creates)  # every response is cut: the policy gives up
    contract.set_faults(sandbox, "salesforce", Faults(rate_limit=10_000))
    found = connector.find_created([c.link_id for c in creates])
    assert len(found) == 3
    dump = sandbox.servers["salesforce"].emulator.dump()["Opportunity"]
    assert sum(1 for r in dump if str(r.get("Crmsync_Id__c", "")).startswith("ent-")) == 3


def test_pipelines_and_owners(connector):
    (pipeline,) = connector.pipelines()
    assert pipeline.id == "default"
    assert [s.id for s in pipeline.stages][:2] == ["Prospecting", "Qualification"]
    won = next(s for s in pipeline.stages if s.id == "Closed Won")
    assert (won.is_closed, won.is_won, str(won.probability)) == (True, True, "1")
    assert {o["Email"] for o in connector.owners()} == OWNER_EMAILS


def test_check_costs_one_call(connector):
    connector.check()
    assert connector.calls() == {"check": 1}


def test_rate_limit_headers_keep_a_steady_run_under_the_window(make_connector, sandbox):
    contract.set_faults(
        sandbox, "salesforce", Faults(enforce_rate_limit=True, rate_limit=5, rate_window=1.0)
    )
    # A window long against request latency, so a loaded machine cannot blur the two counts.
    connector = make_connector(rate_limit=(5, 1.0))
    started = time.monotonic()
    for _ in range(12):
        connector.owners()
    assert time.monotonic() - started >= 1.9
    statuses = sandbox.servers["salesforce"].stats.snapshot()["statuses"]
    assert set(statuses) == {"200"}, statuses
