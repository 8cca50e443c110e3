"""The audit's hand-made pipeline (test_report_audit_figures.py) as native records the three CRM
emulators serve: pulled through the official client libraries, mapped, matched and reported
with the clock at 2025-03-15 10:00 UTC. Every figure is computed by hand in the comments.

The deals and their dates are those of test_report_audit_figures.py, with what each CRM really
records: Salesforce its OpportunityHistory, HubSpot an hs_date_entered_<stage> property per
stage a deal entered (so every HubSpot deal has a history, if only of its current stage),
Pipedrive no history (stage_change_time, won_time, lost_time). Matched by external-id fields:
Orion (sf:1, hs:11), Vega (sf:2, hs:12), Draco (sf:4, pd:21). Policies: `conflict`, so where
the Draco copies disagree (amount 8000 vs 7500 EUR) config order counts Salesforce's.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.sandbox.generator import generate
from sync.health import build_health
from sync.reconcile import analyze
from sync.report_inputs import health_inputs
from sync.report_render import to_json
from sync.runtime import open_runtime
from tests.sandbox_env import SandboxEnv, make_env, run_crmsync

pytestmark = pytest.mark.timeout(180)

NOW = datetime(2025, 3, 15, 10, 0, tzinfo=UTC)
SF_ID = "0065g00000000{:02d}AAA"
SF_USERS = {"o1": "0055g000000001cAAA", "o2": "0055g000000001gAAA"}  # quinn, ben
HS_OWNERS = {"o1": "41629779", "o2": "41633903", "o3": "41634934"}  # quinn, ben, grace
PD_USERS = {"o4": 12007}  # anna
PD_SF_FIELD = "3172fc4912e0922a2cf2b7ff48a5310cc1b397c4"  # Pipedrive's field for the SF id


def _sf(n: int, name: str, stage: str, created: str, **fields: Any) -> dict[str, Any]:
    closed, won = stage.startswith("Closed"), stage == "Closed Won"
    record = {
        "attributes": {"type": "Opportunity"},
        "Id": SF_ID.format(n), "IsDeleted": False, "Name": name, "StageName": stage,
        "Amount": None, "Probability": None, "CloseDate": None, "CurrencyIsoCode": "USD",
        "IsClosed": closed, "IsWon": won, "OwnerId": None,
        "CreatedDate": f"{created}T00:00:00.000+0000",
        "LastModifiedDate": f"{created}T00:00:00.000+0000",
        "HubSpot_Deal_Id__c": None, "Pipedrive_Deal_Id__c": None, "Crmsync_Id__c": None,
    }  # fmt: skip
    record.update(fields)
    record["SystemModstamp"] = record["LastModifiedDate"]
    return record


def _history(n: int, *entries: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "attributes": {"type": "OpportunityHistory"},
            "Id": f"0085g00000{n:02d}{i:02d}AAA",
            "OpportunityId": SF_ID.format(n),
            "StageName": stage,
            "CreatedDate": f"{day}T00:00:00.000+0000",
            "IsDeleted": False,
        }
        for i, (stage, day) in enumerate(entries)
    ]


def _hs(id: str, name: str, stage: str, created: str, updated: str, **props: Any) -> dict:
    closed = stage in ("closedwon", "closedlost")
    properties = {
        "dealname": name, "dealstage": stage, "pipeline": "default", "amount": "",
        "closedate": "", "deal_currency_code": "USD", "hubspot_owner_id": "",
        "createdate": f"{created}T00:00:00.000Z", "hs_lastmodifieddate": f"{updated}T00:00:00.000Z",
        "hs_is_closed": str(closed).lower(), "hs_is_closed_won": str(stage == "closedwon").lower(),
        "hs_object_id": id, "salesforce_opportunity_id": None, "pipedrive_deal_id": None,
        "crmsync_id": None,
    }  # fmt: skip
    properties.update(props)
    return {
        "id": id,
        "properties": properties,
        "createdAt": properties["createdate"],
        "updatedAt": properties["hs_lastmodifieddate"],
        "archived": False,
    }


def _entered(*entries: tuple[str, str]) -> dict[str, str]:
    return {f"hs_date_entered_{stage}": f"{day}T00:00:00.000Z" for stage, day in entries}


def _pd(template: dict[str, Any], id: int, title: str, **fields: Any) -> dict[str, Any]:
    record = copy.deepcopy(template)
    record.update(
        id=id, title=title, org_id=None, pipeline_id=1, status="open", probability=None,
        value=None, currency="USD", user_id=None, stage_change_time=None, won_time=None,
        lost_time=None, close_time=None, expected_close_date=None, active=True,
    )  # fmt: skip
    record[PD_SF_FIELD] = None
    record.update(fields)
    return record


def _dataset() -> dict[str, Any]:
    world = generate(3, 1)[0]
    sf, hs, pd = world["salesforce"], world["hubspot"], world["pipedrive"]
    sf["Opportunity"] = [
        _sf(1, "Orion", "Proposal/Price Quote", "2025-01-01", Amount=10000, Probability=50,
            CloseDate="2025-04-10", OwnerId=SF_USERS["o1"], HubSpot_Deal_Id__c="11",
            LastModifiedDate="2025-03-01T00:00:00.000+0000"),
        _sf(2, "Vega", "Closed Won", "2024-12-01", Amount=20000, Probability=100,
            CloseDate="2025-02-28", OwnerId=SF_USERS["o2"], HubSpot_Deal_Id__c="12",
            LastModifiedDate="2025-02-28T00:00:00.000+0000"),
        _sf(3, "Lyra", "Closed Lost", "2025-01-05", Amount=5000, Probability=0,
            CloseDate="2025-02-15", OwnerId=SF_USERS["o1"],
            LastModifiedDate="2025-02-15T00:00:00.000+0000"),
        _sf(4, "Draco", "Negotiation/Review", "2024-11-01", Amount=8000, Probability=90,
            CurrencyIsoCode="EUR", CloseDate="2025-03-10", Pipedrive_Deal_Id__c="21",
            LastModifiedDate="2025-03-01T00:00:00.000+0000"),
        _sf(5, "Cygnus", "Prospecting", "2025-03-14", Probability=10, OwnerId=SF_USERS["o2"]),
    ]  # fmt: skip
    sf["OpportunityHistory"] = [
        *_history(1, ("Prospecting", "2025-01-01"), ("Qualification", "2025-01-21"),
                  ("Proposal/Price Quote", "2025-02-20")),
        *_history(2, ("Prospecting", "2024-12-01"), ("Qualification", "2024-12-15"),
                  ("Proposal/Price Quote", "2025-01-10"), ("Negotiation/Review", "2025-02-01"),
                  ("Closed Won", "2025-02-28")),
        *_history(3, ("Prospecting", "2025-01-05"), ("Qualification", "2025-01-25"),
                  ("Closed Lost", "2025-02-15")),
        *_history(4, ("Prospecting", "2024-11-01"), ("Negotiation/Review", "2024-12-01")),
        *_history(5, ("Prospecting", "2025-03-14")),
    ]  # fmt: skip
    lead = "75210930"
    hs["deals"] = [
        _hs("11", "Orion", "presentationscheduled", "2025-01-02", "2025-03-10", amount="10000",
            closedate="2025-04-10T00:00:00Z", hubspot_owner_id=HS_OWNERS["o1"],
            hs_deal_stage_probability="0.5", salesforce_opportunity_id=SF_ID.format(1),
            **_entered((lead, "2025-01-02"), ("presentationscheduled", "2025-02-21"))),
        _hs("12", "Vega", "closedwon", "2024-12-01", "2025-02-28", amount="20000",
            closedate="2025-02-28T00:00:00Z", hubspot_owner_id=HS_OWNERS["o2"],
            hs_deal_stage_probability="1.0", salesforce_opportunity_id=SF_ID.format(2),
            **_entered((lead, "2024-12-01"), ("closedwon", "2025-02-28"))),
        _hs("13", "Pollux", "closedwon", "2025-01-15", "2025-03-01", amount="3000",
            deal_currency_code="EUR", closedate="2025-03-01T00:00:00Z",
            hubspot_owner_id=HS_OWNERS["o3"], hs_deal_stage_probability="1.0",
            **_entered(("closedwon", "2025-03-01"))),
        _hs("14", "Castor", "closedlost", "2025-01-20", "2025-02-01",
            hubspot_owner_id=HS_OWNERS["o3"], hs_deal_stage_probability="0.0",
            **_entered(("closedlost", "2025-02-01"))),
        _hs("15", "Rigel", "qualifiedtobuy", "2025-02-01", "2025-02-10", amount="4000",
            closedate="2025-03-15T00:00:00Z", hubspot_owner_id=HS_OWNERS["o1"],
            hs_deal_stage_probability="0.25", **_entered(("qualifiedtobuy", "2025-02-10"))),
    ]  # fmt: skip
    template = pd["deals"][0]
    anna = {"id": PD_USERS["o4"], "email": "anna.kowalski@example.com", "value": PD_USERS["o4"]}
    pd["deals"] = [
        _pd(template, 21, "Draco", stage_id=5, value=7500, currency="EUR", user_id=anna,
            add_time="2024-11-02 00:00:00", update_time="2025-03-12 00:00:00",
            stage_change_time="2024-12-02 00:00:00", expected_close_date="2025-03-10",
            **{PD_SF_FIELD: SF_ID.format(4)}),
        _pd(template, 22, "Sirius", stage_id=3, status="lost", value=6000, user_id=anna,
            add_time="2024-12-10 00:00:00", update_time="2025-01-20 00:00:00",
            lost_time="2025-01-20 00:00:00", close_time="2025-01-20 00:00:00",
            expected_close_date="2025-01-20", active=False),
        _pd(template, 23, "Altair", stage_id=5, status="won", value=12000, currency="EUR",
            user_id=anna, add_time="2025-01-05 00:00:00", update_time="2025-03-05 00:00:00",
            won_time="2025-03-05 00:00:00", close_time="2025-03-05 00:00:00",
            expected_close_date="2025-03-05", active=False),
        _pd(template, 24, "Deneb", stage_id=1, value=2000, currency="GBP",
            add_time="2025-03-01 00:00:00", update_time="2025-03-01 00:00:00",
            expected_close_date="2025-05-20"),
    ]  # fmt: skip
    pd["deal_flows"] = {}
    return world


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    folder = tmp_path_factory.mktemp("audit")
    sandbox_env = make_env(
        folder,
        _dataset(),
        f"sqlite:///{folder}/store.db",
        policies={"default": "conflict", "fields": {}},
        report={"currency": "USD", "rates": {"EUR": "1.10"}},
    )
    try:
        yield sandbox_env
    finally:
        sandbox_env.sandbox.stop()


@pytest.fixture(scope="module")
def data(env: SandboxEnv) -> dict[str, Any]:
    pulled: subprocess.CompletedProcess[str] = run_crmsync(
        "pull", "--config", str(env.config), "--full"
    )
    assert pulled.returncode == 0, pulled.stderr
    with open_runtime(str(env.config), connect=False) as rt:
        run_id = rt.store.runs.start("report", "report", rt.config.fingerprint())
        result = analyze(rt.config, rt.store, run_id=run_id, remember=False, known_writes=True)
        report = build_health(health_inputs(rt.config, rt.store, result, now=NOW))
        rt.store.runs.finish(run_id, "ok")
    return to_json(report)


def _funnel(data: dict[str, Any], instance: str | None) -> dict[str, Any]:
    if instance is None:
        return data["funnels"]["default"]
    return data["systems"][instance]["funnels"]["default"]


def test_nothing_was_left_unmapped_and_the_three_matches_were_found(data):
    assert data["data_quality"]["mapping_errors"] == []
    pairs = [(p["a"], p["b"], p["matched"]) for p in data["cross_system"]["pairs"]]
    assert pairs == [("hubspot", "pipedrive", 0), ("hubspot", "salesforce", 2),
                     ("pipedrive", "salesforce", 1)]  # fmt: skip
    c = data["consolidated"]
    assert (c["deals"], c["copies_merged"], c["open"], c["won"], c["lost"]) == (11, 3, 5, 3, 3)


def test_consolidated_amounts_per_currency_and_converted(data):
    c = data["consolidated"]
    # open: Orion 10000 + Rigel 4000 USD; Draco 8000 EUR (Salesforce's, config order); Deneb GBP
    assert {k: str(float(v)) for k, v in c["open_amount"].items()} == {
        "EUR": "8000.0",
        "GBP": "2000.0",
        "USD": "14000.0",
    }
    # weighted: 5000 + 1000 USD; 8000 x 0.9 = 7200 EUR; 2000 x 0.1 = 200 GBP
    assert c["weighted"] == {"EUR": "7200.00", "GBP": "200.00", "USD": "6000.00"}
    # 10000 + 4000 + 8800 = 22800; 5000 + 1000 + 7920 = 13920; 20000 + 16500 = 36500
    converted = c["converted"]
    assert (converted["open_amount"], converted["weighted"], converted["won_amount"]) == (
        "22800.00",
        "13920.00",
        "36500.00",
    )
    assert converted["not_converted"] == {"GBP": 1}
    assert c["win_rate"] == {"won": 3, "lost": 3, "rate": "0.5000"}
    assert (c["stale"], c["past_due"]) == (2, 1)  # Draco 104 days, Rigel 33; Draco past due


def test_per_instance_win_rate_conversion_and_sales_cycle(data):
    sf, hs, pd = (_funnel(data, i) for i in ("salesforce", "hubspot", "pipedrive"))
    assert [f["win_rate"]["rate"] for f in (sf, hs, pd)] == ["0.5000", "0.6667", "0.5000"]
    assert [s["rate"] for s in sf["conversion"]["steps"]] == [
        "0.8000",
        "0.7500",
        "0.6667",
        "0.5000",
    ]
    # HubSpot: every deal has an hs_date_entered_ of its current stage: all from history
    # (Castor's only entry is closedlost: unknown, left out)
    assert (hs["conversion"]["method"], hs["conversion"]["excluded_unknown"]) == (
        "stage_history",
        1,
    )
    assert [s["rate"] for s in hs["conversion"]["steps"]] == [
        "1.0000",
        "0.7500",
        "0.6667",
        "1.0000",
    ]
    # Pipedrive kept Sirius in stage 3 (proposal)
    assert [s["rate"] for s in pd["conversion"]["steps"]] == [
        "0.7500",
        "1.0000",
        "0.6667",
        "0.5000",
    ]
    assert pd["drop_off"]["by_stage"] == {"proposal": 1}
    # Vega 89 days (history), Pollux 45 (hs_date_entered_closedwon), Altair 59 (won_time)
    assert (sf["sales_cycle"]["median_days"], hs["sales_cycle"]["median_days"]) == ("89.0", "67.0")
    assert (pd["sales_cycle"]["median_days"], pd["sales_cycle"]["sources"]) == (
        "59.0",
        {"stage_entered_at": 1},
    )
    consolidated = _funnel(data, None)
    assert (
        consolidated["sales_cycle"]["median_days"],
        consolidated["sales_cycle"]["p90_days"],
    ) == (
        "59.0",
        "89.0",
    )
    assert consolidated["conversion"]["lead_to_won"] == "0.2727"  # 3 / 11


def test_time_in_stage_and_stalled_deals(data):
    hs = _funnel(data, "hubspot")["time_in_stage"]
    # Orion lead 50 days, Vega lead 89: median 69.5; Rigel in qualified since 02-10 (33 days)
    assert [(s["stage"], s["median_days"], s["stalled"]) for s in hs["stages"]] == [
        ("lead", "69.5", 0),
        ("qualified", None, 1),
        ("proposal", None, 0),
        ("negotiation", None, 0),
    ]
    consolidated = _funnel(data, None)["time_in_stage"]
    assert consolidated["bottleneck"] == ["negotiation"]  # Vega's 27 days; lead 20
    assert consolidated["most_stalled"] == ["qualified", "negotiation"]  # Rigel, Draco


def test_forecast_stage_table_and_completeness(data):
    months = [(m["month"], m["currency"], m["weighted"])
              for m in data["consolidated"]["forecast"]["months"]]  # fmt: skip
    assert months == [("2025-03", "USD", "1000.00"), ("2025-04", "USD", "5000.00"),
                      ("2025-05", "GBP", "200.00")]  # fmt: skip
    forecast = data["consolidated"]["forecast"]
    assert (forecast["past_due"], forecast["no_close_date"], forecast["without_amount"]) == (
        1,
        1,
        0,
    )
    won = {s["key"]: s for s in _funnel(data, None)["stages"]}["won"]
    assert won["count"] == 3
    assert {k: str(float(v)) for k, v in won["amount"].items()} == {
        "EUR": "15000.0",
        "USD": "20000.0",
    }
    quality = data["data_quality"]["instances"]
    shares = {i: {f["field"]: f["share"] for f in q["completeness"]} for i, q in quality.items()}
    assert shares == {
        "salesforce": {"amount": "0.8000", "close_date": "0.8000", "owner_email": "0.8000"},
        "hubspot": {"amount": "0.8000", "close_date": "0.8000", "owner_email": "1.0000"},
        "pipedrive": {"amount": "1.0000", "close_date": "1.0000", "owner_email": "0.7500"},
    }


def test_the_one_matched_deal_that_disagrees_is_the_mismatch(data):
    cross = data["cross_system"]
    # Draco: amount 8000 vs 7500 EUR, owner none vs anna, probability 0.9 vs none
    assert cross["mismatched_entities"] == 1
    assert "amount" in cross["mismatches_by_field"]
