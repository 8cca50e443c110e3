"""Closed deals end to end: won and lost deals in the stage table, deals that were won once and
then reopened or lost, and what `--since` keeps. Native records served by the Salesforce and
Pipedrive sandboxes, pulled through the official client libraries; every figure by hand here.

Salesforce (stage map: Prospecting -> lead, Negotiation/Review -> negotiation, Closed Won/Lost),
each with its OpportunityHistory; 1000 USD each, created 2024-01-01:
  S1 Reopened  open        Prospecting 01-01, Negotiation 02-01, Closed Won 03-01, Negotiation 03-05
  S2 Reversed  lost        Prospecting 01-01, Negotiation 02-01, Closed Won 03-01, Closed Lost 03-05
  S3 Won       won         Prospecting 01-01, Negotiation 02-01, Closed Won 03-01
Pipedrive (pipeline 1; stage 2 taken out of the stage map: unmapped), no flow read:
  P1 lost in stage 3 (proposal)  1000 USD, its own probability 60 %, updated 2024-03-01
  P2 won in stage 5             2000 USD, its own probability 40 %, updated 2024-03-01
  P3 open in stage 2 (unmapped)  500 USD, updated 2024-01-01
  P4 open in stage 2 (unmapped)  500 USD, updated 2024-07-01
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from connectors.sandbox.generator import generate
from connectors.sandbox.salesforce_store import sf_id
from tests.sandbox_env import SandboxEnv, make_env, run_crmsync

_SF_STAGES = {  # StageName -> (IsClosed, IsWon, Probability)
    "Prospecting": (False, False, 10.0),
    "Negotiation/Review": (False, False, 90.0),
    "Closed Won": (True, True, 100.0),
    "Closed Lost": (True, False, 0.0),
}
_SF_DEALS = {  # number -> (name, stage now, stages entered in turn on the _ENTERED days)
    1: ("Reopened", "Negotiation/Review", ["Prospecting", "Negotiation/Review", "Closed Won",
                                           "Negotiation/Review"]),
    2: ("Reversed", "Closed Lost", ["Prospecting", "Negotiation/Review", "Closed Won",
                                    "Closed Lost"]),
    3: ("Won", "Closed Won", ["Prospecting", "Negotiation/Review", "Closed Won"]),
}  # fmt: skip
_ENTERED = ("2024-01-01", "2024-02-01", "2024-03-01", "2024-03-05")


def _sf_stamp(day: str) -> str:
    return f"{day}T00:00:00.000+0000"


def _salesforce(template: dict[str, Any], history_template: dict[str, Any]) -> dict[str, Any]:
    opportunities, history = [], []
    for number, (name, stage, entered) in _SF_DEALS.items():
        closed, won, probability = _SF_STAGES[stage]
        record = copy.deepcopy(template)
        record.update(
            Id=sf_id("006", 900 + number), Name=name, StageName=stage, IsClosed=closed, IsWon=won,
            Amount=1000.0, Probability=probability, CloseDate="2030-01-15",
            CurrencyIsoCode="USD", CreatedDate=_sf_stamp("2024-01-01"),
            LastModifiedDate=_sf_stamp(_ENTERED[len(entered) - 1]),
            SystemModstamp=_sf_stamp(_ENTERED[len(entered) - 1]),
            HubSpot_Deal_Id__c=None, Pipedrive_Deal_Id__c=None, Crmsync_Id__c=None,
        )  # fmt: skip
        opportunities.append(record)
        for index, step in enumerate(entered):
            row = copy.deepcopy(history_template)
            row.update(
                Id=sf_id("008", 900 + 10 * number + index), OpportunityId=record["Id"],
                StageName=step, Amount=1000.0, Probability=_SF_STAGES[step][2],
                CreatedDate=_sf_stamp(_ENTERED[index]),
            )  # fmt: skip
            history.append(row)
    return {"Opportunity": opportunities, "OpportunityHistory": history}


def _pipedrive(template: dict[str, Any]) -> list[dict[str, Any]]:
    deals = []
    for deal_id, status, stage_id, value, probability, updated in (
        (1, "lost", 3, 1000, 60, "2024-03-01"),
        (2, "won", 5, 2000, 40, "2024-03-01"),
        (3, "open", 2, 500, None, "2024-01-01"),
        (4, "open", 2, 500, None, "2024-07-01"),
    ):
        record = copy.deepcopy(template)
        record.update(id=deal_id, title=f"Pipedrive {deal_id}", value=value, currency="USD")
        record.update(status=status, pipeline_id=1, stage_id=stage_id, probability=probability)
        record.update(add_time="2024-01-01 00:00:00", update_time=f"{updated} 00:00:00")
        record.update(stage_change_time=None, won_time=None, lost_time=None)
        record.update(expected_close_date="2030-01-15")
        if status != "open":
            record[f"{status}_time"] = f"{updated} 00:00:00"
        for field in list(record):
            if len(field) == 40:  # the crmsync link fields: no match evidence
                record[field] = None
        deals.append(record)
    return deals


def _dataset() -> dict[str, Any]:
    generated = generate(3, 1)[0]
    salesforce, pipedrive = generated["salesforce"], generated["pipedrive"]
    salesforce.update(
        _salesforce(salesforce["Opportunity"][0], salesforce["OpportunityHistory"][0])
    )
    pipedrive["deals"] = _pipedrive(pipedrive["deals"][0])
    pipedrive["deal_flows"] = {}
    return {"salesforce": salesforce, "pipedrive": pipedrive}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxEnv]:
    folder = tmp_path_factory.mktemp("closed-deals")
    made = make_env(
        folder,
        _dataset(),
        f"sqlite:///{folder}/store.db",
        systems=("salesforce", "pipedrive"),
    )
    document = yaml.safe_load(made.config.read_text())
    del document["systems"]["pipedrive"]["stage_map"]["1"]["2"]  # Contact Made: unmapped
    made.config.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        yield made
    finally:
        made.sandbox.stop()


def _report(env: SandboxEnv, *args: str) -> dict[str, Any]:
    done = run_crmsync("report", "--config", str(env.config), "--format", "json", *args)
    assert done.returncode in (0, 3), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture(scope="module")
def report(env: SandboxEnv) -> dict[str, Any]:
    return _report(env, "--refresh")


def _funnel(report: dict[str, Any], instance: str) -> dict[str, Any]:
    figures: dict[str, Any] = report["systems"][instance]["funnels"]["default"]
    return figures


def _stages(report: dict[str, Any], instance: str) -> dict[str, tuple[Any, Any]]:
    return {s["key"]: (s["amount"], s["weighted"]) for s in _funnel(report, instance)["stages"]}


def test_a_won_deal_weighs_its_whole_amount_and_a_lost_one_nothing_whatever_its_probability(
    report: dict[str, Any],
) -> None:
    # Pipedrive keeps a deal's own probability when it is won or lost: 40 % of P2 (800.00) and
    # 60 % of P1 (600.00) were shown as weighted won and lost pipeline.
    stages = _stages(report, "pipedrive")
    assert stages["won"] == ({"USD": "2000"}, {"USD": "2000.00"})
    assert stages["lost"] == ({"USD": "1000"}, {"USD": "0.00"})


def test_a_deal_won_once_then_reopened_or_lost_has_not_converted_to_won(
    report: dict[str, Any],
) -> None:
    # S1, S2 and S3 all reached negotiation; only S3 is won. S2 dropped off in negotiation, so
    # it cannot also count as having gone on to won (the step showed 3 of 3, 1.0000).
    figures = _funnel(report, "salesforce")
    conversion = figures["conversion"]
    steps = [(s["reached_from"], s["reached_to"], s["rate"]) for s in conversion["steps"]]
    assert steps == [(3, 3, "1.0000"), (3, 3, "1.0000"), (3, 3, "1.0000"), (3, 1, "0.3333")]
    assert (conversion["method"], conversion["won"], conversion["lead_to_won"]) == (
        "stage_history",
        1,
        "0.3333",
    )
    assert figures["drop_off"]["by_stage"] == {"negotiation": 1}


def test_since_counts_unmapped_stages_of_the_deals_in_the_window_only(
    env: SandboxEnv, report: dict[str, Any]
) -> None:
    # P3 and P4 sit in the unmapped stage 2; only P4 was updated since 2024-06-01.
    assert report["data_quality"]["instances"]["pipedrive"]["unmapped_stages"] == {"1/2": 2}
    quality = _report(env, "--since", "2024-06-01")["data_quality"]["instances"]["pipedrive"]
    assert (quality["deals"], quality["unmapped_stages"]) == (1, {"1/2": 1})  # was 2 of 1 deal
