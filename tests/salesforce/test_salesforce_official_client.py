"""simple-salesforce, used as its docs show, works unchanged against the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import yaml
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql

from connectors.sandbox.faults import Faults
from connectors.sandbox.launcher import Sandbox
from connectors.sandbox.salesforce_store import (
    CORPORATE_CURRENCY,
    RecordError,
    SalesforceStore,
    format_stamp,
)
from tests.salesforce.sf_dataset import DELETED, LIVE, TRICKY_NAME, dataset

SPEC = Path("/work/shared/specs/salesforce_rest_subset.openapi.yaml")


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip("shared spec not present")
    spec = yaml.safe_load(SPEC.read_text())
    return {"components": spec["components"]}


def validate(instance: Any, ref: str, components: dict[str, Any]) -> None:
    jsonschema.validate(instance, {"$ref": ref, **components})


def stats(sandbox: Sandbox) -> dict[str, int]:
    requests_: dict[str, int] = sandbox.servers["salesforce"].stats.snapshot()["requests"]
    return requests_


QUERY_KEY = "GET /services/data/{version}/query"
MORE_KEY = "GET /services/data/{version}/query/{locator}"


def test_query_all_iter_pages_by_2000_and_honours_batch_size(
    sf: Salesforce, sandbox: Sandbox, components: dict[str, Any]
) -> None:
    first = sf.query("SELECT Id, Name, Amount, SystemModstamp FROM Opportunity")
    assert first["totalSize"] == LIVE and len(first["records"]) == 2000 and not first["done"]
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    validate(first, "#/components/responses/Query/content/application~1json/schema", components)
    validate(first["records"][0], "#/components/schemas/Opportunity", components)
    assert first["records"][0]["attributes"]["type"] == "Opportunity"

    sandbox.servers["salesforce"].stats.clear()
    ids = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Opportunity")]
    assert len(ids) == len(set(ids)) == LIVE
    assert stats(sandbox) == {QUERY_KEY: 1, MORE_KEY: 2}

    sandbox.servers["salesforce"].stats.clear()
    small = list(
        sf.query_all_iter(
            "SELECT Id FROM Opportunity", headers={"Sforce-Query-Options": "batchSize=500"}
        )
    )
    assert len(small) == LIVE
    assert stats(sandbox) == {QUERY_KEY: 1, MORE_KEY: 8}


def test_query_all_includes_deleted_rows_and_query_does_not(sf: Salesforce) -> None:
    live = sf.query("SELECT Id FROM Opportunity WHERE IsDeleted = true")
    every = sf.query_all("SELECT Id FROM Opportunity WHERE IsDeleted = true", include_deleted=True)
    assert live["totalSize"] == 0
    assert every["totalSize"] == DELETED


def test_quoted_values_with_quote_and_backslash_round_trip(sf: Salesforce) -> None:
    soql = format_soql("SELECT Id, Name FROM Opportunity WHERE Name = {}", TRICKY_NAME)
    records = sf.query(soql)["records"]
    assert [r["Name"] for r in records] == [TRICKY_NAME]
    # SOQL string comparison ignores case, as Salesforce's does.
    upper = sf.query(format_soql("SELECT Id FROM Opportunity WHERE Name = {}", TRICKY_NAME.upper()))
    assert upper["totalSize"] == 1


def test_where_order_by_and_limit_combine(sf: Salesforce) -> None:
    soql = (
        "SELECT Id, StageName, Amount FROM Opportunity "
        "WHERE (StageName IN ('Proposal', 'Negotiation') OR Amount < 1021) AND NOT IsWon = true "
        "AND CloseDate >= 2024-03-01 AND SystemModstamp > 2024-05-01T00:00:00+0000 "
        "ORDER BY StageName DESC, Amount ASC LIMIT 5"
    )
    rows = sf.query(soql)["records"]
    assert len(rows) == 5
    keys = [(r["StageName"], -r["Amount"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert all(r["StageName"] in ("Proposal", "Negotiation") or r["Amount"] < 1021 for r in rows)


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Opportunity WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity WHERE Name = 'unterminated", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity GROUP BY Name", "MALFORMED_QUERY"),
        ("SELECT Nope__c FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity WHERE CloseDate > '2024-01-01'", "INVALID_FIELD"),
    ],
)
def test_bad_queries_get_salesforce_error_bodies(
    sf: Salesforce, soql: str, code: str, components: dict[str, Any]
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    validate(caught.value.content, "#/components/schemas/Error", components)
    assert caught.value.content[0]["errorCode"] == code


def test_collection_update_reports_each_record_and_bumps_modstamp(
    sf: Salesforce, sandbox: Sandbox, components: dict[str, Any]
) -> None:
    target = sf.query(
        "SELECT Id, SystemModstamp FROM Opportunity WHERE StageName = 'Prospecting' LIMIT 1"
    )
    record = target["records"][0]
    deleted = sf.query_all(
        "SELECT Id FROM Opportunity WHERE IsDeleted = true", include_deleted=True
    )
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Opportunity"}, "id": record["Id"], "StageName": "Closed Won"},
            {"attributes": {"type": "Opportunity"}, "id": "not-an-id", "Amount": 5},
            {"attributes": {"type": "Opportunity"}, "id": deleted["records"][0]["Id"], "Amount": 5},
        ],
    }
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    for result in results:
        validate(result, "#/components/schemas/SaveResult", components)
    assert [r["success"] for r in results] == [True, False, False]
    assert results[1]["errors"][0]["statusCode"] == "MALFORMED_ID"
    assert results[2]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    fresh = sf.Opportunity.get(record["Id"])
    assert (fresh["IsWon"], fresh["IsClosed"], fresh["Probability"]) == (True, True, 100)
    assert fresh["ForecastCategoryName"] == "Closed"
    assert fresh["SystemModstamp"] > record["SystemModstamp"]
    history = sf.query(
        format_soql(
            "SELECT StageName FROM OpportunityHistory WHERE OpportunityId = {}", record["Id"]
        )
    )
    assert [h["StageName"] for h in history["records"]] == ["Closed Won"]


def test_all_or_none_rolls_back_every_record(sf: Salesforce, sandbox: Sandbox) -> None:
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Opportunity LIMIT 2")["records"]]
    sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, fail_ids=(ids[1],)))
    body = {
        "allOrNone": True,
        "records": [{"attributes": {"type": "Opportunity"}, "id": i, "Amount": 1} for i in ids],
    }
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    codes = [r["errors"][0]["statusCode"] for r in results]
    assert codes == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "FIELD_CUSTOM_VALIDATION_EXCEPTION"]
    assert sf.Opportunity.get(ids[0])["Amount"] != 1


DELETE_KEY = "DELETE /services/data/{version}/composite/sobjects"


def test_collection_delete_moves_records_to_the_recycle_bin_in_input_order(
    sf: Salesforce, sandbox: Sandbox
) -> None:
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Opportunity ORDER BY Id LIMIT 3")["records"]]
    gone = sf.query_all("SELECT Id FROM Opportunity WHERE IsDeleted = true", include_deleted=True)
    sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, fail_ids=(ids[2],)))
    sandbox.servers["salesforce"].stats.clear()
    asked = [ids[0], "006000000000999ZZZ", gone["records"][0]["Id"], "not-an-id", ids[1], ids[2]]
    params = {"ids": ",".join(asked), "allOrNone": "false"}
    results = sf.restful("composite/sobjects", method="DELETE", params=params)
    assert [None if r["success"] else r["errors"][0]["statusCode"] for r in results] == [
        None,
        "INVALID_CROSS_REFERENCE_KEY",
        "ENTITY_IS_DELETED",
        "MALFORMED_ID",
        None,
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    ]
    assert [r["id"] for r in results] == asked
    assert stats(sandbox) == {DELETE_KEY: 1}
    live = {r["Id"] for r in sf.query_all("SELECT Id FROM Opportunity")["records"]}
    assert not live & set(ids[:2]) and ids[2] in live
    binned = sf.query_all(
        format_soql(
            "SELECT Id, SystemModstamp FROM Opportunity WHERE IsDeleted = true AND Id IN {}", ids
        ),
        include_deleted=True,
    )["records"]
    assert {r["Id"] for r in binned} == set(ids[:2])
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.get(ids[0])
    # The deleted resource reports whole minutes up to the last one: move the deletions back two
    # minutes so the window that covers them has closed.
    store = sandbox.servers["salesforce"].emulator.store
    earlier = datetime.now(UTC) - timedelta(minutes=2)
    for record in binned:
        assert record["SystemModstamp"] > format_stamp(earlier)  # the delete stamped it now
        store.by_id[record["Id"]]["SystemModstamp"] = format_stamp(earlier)
    now = datetime.now(UTC)
    deleted = sf.Opportunity.deleted(now - timedelta(days=1), now)["deletedRecords"]
    assert sorted(d["id"] for d in deleted) == sorted(ids[:2])
    assert {d["deletedDate"] for d in deleted} == {format_stamp(earlier)}


def test_collection_delete_refuses_over_200_ids_and_all_or_none_deletes_nothing(
    sf: Salesforce, sandbox: Sandbox
) -> None:
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Opportunity LIMIT 201")["records"]]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids)})
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, fail_ids=(ids[1],)))
    params = {"ids": ",".join(ids[:3]), "allOrNone": "true"}
    results = sf.restful("composite/sobjects", method="DELETE", params=params)
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    ]
    live = {r["Id"] for r in sf.query_all("SELECT Id FROM Opportunity")["records"]}
    assert set(ids[:3]) <= live


def test_collection_create_assigns_new_ids_and_single_patch_answers_204(sf: Salesforce) -> None:
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Opportunity"}, "Name": "New A", "StageName": "Proposal",
             "CloseDate": "2024-12-01", "Crmsync_Id__c": "ent-a"},
            {"attributes": {"type": "Opportunity"}, "Name": "No stage"},
        ],
    }  # fmt: skip
    results = sf.restful("composite/sobjects", method="POST", json=body)
    assert (
        results[0]["success"] and len(results[0]["id"]) == 18 and results[0]["id"].startswith("006")
    )
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.Opportunity.update(results[0]["id"], {"Amount": 42.5}) == 204
    created = sf.Opportunity.get(results[0]["id"])
    assert (created["Amount"], created["Probability"], created["Crmsync_Id__c"]) == (
        42.5,
        50,
        "ent-a",
    )
    with pytest.raises(SalesforceMalformedRequest):
        sf.Opportunity.update(results[0]["id"], {"IsWon": True})
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.get("006000000000999ZZZ")


def test_a_name_longer_than_120_characters_is_refused_string_too_long(sf: Salesforce) -> None:
    record = sf.query("SELECT Id, Name FROM Opportunity LIMIT 1")["records"][0]
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Opportunity"}, "id": record["Id"], "Name": "N" * 121},
            {"attributes": {"type": "Opportunity"}, "id": record["Id"], "NextStep": "s" * 256},
        ],
    }
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert [
        (r["success"], r["errors"][0]["statusCode"], r["errors"][0]["fields"]) for r in results
    ] == [
        (False, "STRING_TOO_LONG", ["Name"]),
        (False, "STRING_TOO_LONG", ["NextStep"]),
    ]
    assert "(max length=120)" in results[0]["errors"][0]["message"]
    assert sf.Opportunity.update(record["Id"], {"Name": "é" * 120}) == 204  # characters, not bytes
    assert sf.Opportunity.get(record["Id"])["Name"] == "é" * 120


def test_an_amount_with_more_than_16_digits_before_the_point_is_out_of_range(
    sf: Salesforce,
) -> None:
    record = sf.query("SELECT Id FROM Opportunity LIMIT 1")["records"][0]
    ok = 9_999_999_999_999_999  # currency(18, 2): 16 digits before the point
    assert sf.Opportunity.update(record["Id"], {"Amount": ok}) == 204
    assert sf.Opportunity.get(record["Id"])["Amount"] == ok
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Opportunity"}, "id": record["Id"], "Amount": amount}
            for amount in (10_000_000_000_000_000, -1e17)
        ],
    }
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    codes = [
        (r["success"], r["errors"][0]["statusCode"], r["errors"][0]["fields"]) for r in results
    ]
    assert codes == [(False, "NUMBER_OUTSIDE_VALID_RANGE", ["Amount"])] * 2


def test_describe_updated_deleted_and_limits(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert "CurrencyIsoCode" in fields and not fields["IsWon"]["updateable"]
    assert [p["value"] for p in fields["StageName"]["picklistValues"]][:2] == [
        "Prospecting",
        "Qualification",
    ]
    record = sf.query("SELECT Id FROM Opportunity LIMIT 1")["records"][0]
    sf.Opportunity.update(record["Id"], {"NextStep": "call"})
    now = datetime.now(UTC)
    updated = sf.Opportunity.updated(now - timedelta(days=1), now + timedelta(minutes=2))
    covered = updated["latestDateCovered"]
    assert covered.endswith(":00.000+0000")  # minute granularity, never past "now"
    stamp = sf.Opportunity.get(record["Id"])["SystemModstamp"]
    assert updated["ids"] == ([record["Id"]] if stamp <= covered else [])
    deleted = sf.Opportunity.deleted(now - timedelta(days=1), now)
    assert deleted["deletedRecords"] == []  # the dataset's deletions are older than 15 days
    with pytest.raises(SalesforceMalformedRequest):
        sf.Opportunity.updated(now - timedelta(days=40), now)
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] > limits["DailyApiRequests"]["Remaining"] > 0
    assert sf.api_usage["api-usage"].used >= 1


def test_bad_session_and_daily_limit_use_salesforce_errors(
    sf: Salesforce, sandbox: Sandbox
) -> None:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_file)
    stranger = Salesforce(
        instance_url=sandbox.urls["salesforce"], session_id="nope", session=session
    )
    with pytest.raises(SalesforceExpiredSession) as expired:
        stranger.query("SELECT Id FROM Opportunity")
    assert expired.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    raw = session.get(sandbox.urls["salesforce"] + "/services/data/v59.0/limits")
    assert raw.status_code == 401 and raw.headers["Sforce-Limit-Info"].startswith("api-usage=")
    sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, daily_limit=1))
    sf.query("SELECT Id FROM User")
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM User")
    assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_too_many_requests_is_a_403_concurrent_request_limit_not_a_429(
    sf: Salesforce, sandbox: Sandbox
) -> None:
    """Salesforce REST has no 429: over the concurrent limit it answers 403
    REQUEST_LIMIT_EXCEEDED, as for the daily cap, with a ConcurrentRequests message."""
    sandbox.servers["salesforce"].faults.set(Faults(rate_limit=10_000, burst429=1))
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM User")
    assert refused.value.status == 403
    assert refused.value.content == [
        {
            "message": "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
            "errorCode": "REQUEST_LIMIT_EXCEEDED",
        }
    ]


def _created_currency(sf: Salesforce, **values: Any) -> Any:
    record = {"attributes": {"type": "Opportunity"}, "Name": "New", "StageName": "Proposal"}
    body = {"allOrNone": True, "records": [{**record, "CloseDate": "2024-12-01", **values}]}
    (made,) = sf.restful("composite/sobjects", method="POST", json=body)
    return sf.Opportunity.get(made["id"])["CurrencyIsoCode"]


def test_a_record_created_without_a_currency_gets_the_api_users_personal_currency(
    sf: Salesforce, sandbox: Sandbox
) -> None:
    """Multi-currency orgs stamp an omitted CurrencyIsoCode with the creating user's personal
    currency (DefaultCurrencyIsoCode; the corporate one until someone changes it); a
    single-currency org has no CurrencyIsoCode at all."""
    assert _created_currency(sf) == CORPORATE_CURRENCY == "USD"
    emulator = sandbox.servers["salesforce"].emulator
    with emulator.lock:  # an admin sets the integration user's personal currency in Setup
        me = next(u for u in emulator.store.tables["User"] if u["Id"] == emulator.store.api_user)
        me["DefaultCurrencyIsoCode"] = "EUR"
    assert _created_currency(sf) == _created_currency(sf, CurrencyIsoCode=None) == "EUR"
    assert _created_currency(sf, CurrencyIsoCode="GBP") == "GBP"

    single = SalesforceStore(dataset(3, 0, currency=False)["salesforce"])
    new = {"Name": "New", "StageName": "Proposal", "CloseDate": "2024-12-01", "Amount": 10}
    made = single.apply(single.check_create(new))
    assert "CurrencyIsoCode" not in single.by_id[made]
    with pytest.raises(RecordError, match="No such column 'CurrencyIsoCode'"):
        single.check_create({**new, "CurrencyIsoCode": "USD"})


def test_an_opportunity_cannot_be_given_to_a_deactivated_user(
    sf: Salesforce, sandbox: Sandbox
) -> None:
    emulator = sandbox.servers["salesforce"].emulator
    record = sf.query("SELECT Id, OwnerId FROM Opportunity LIMIT 1")["records"][0]
    with emulator.lock:  # an admin deactivates a user who owns no deal of this test
        user = next(
            u
            for u in emulator.store.tables["User"]
            if u["Id"] not in (record["OwnerId"], emulator.store.api_user)
        )
        user["IsActive"] = False
    try:
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Opportunity"}, "id": record["Id"], "OwnerId": user["Id"]}
            ],
        }
        (result,) = sf.restful("composite/sobjects", method="PATCH", json=body)
        assert (result["success"], result["errors"][0]["statusCode"]) == (
            False,
            "INACTIVE_OWNER_OR_USER",
        )
        assert sf.Opportunity.get(record["Id"])["OwnerId"] == record["OwnerId"]
    finally:
        with emulator.lock:
            user["IsActive"] = True
