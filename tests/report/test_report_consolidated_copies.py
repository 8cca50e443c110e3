"""Which copy of a matched deal counts in the consolidated figures where the copies disagree:
the field's reconcile policy picks it, config order only where the policy cannot decide.

The dataset is fixtures.py's (now 2024-06-30, sf first in config order), with the second copy
of the matched Acme deal (hs:10, sf:1's twin) changed per test. Consolidated without Acme:
open EUR 2000 (sf:2 Beta, past due) and GBP 100 (hs:13 Eta); won USD 8000 (sf:3 3000, hs:11
5000); 1 past due (sf:2).
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal as D
from typing import Any

from fixtures import HS, SF, at, inputs, usd

from config import Policy, PolicyRule
from mapping.model import DealStatus
from sync.health import build_health
from sync.health_model import HealthReport
from sync.report_render import to_json
from sync.report_run import render_report

SOURCE_HS = Policy(PolicyRule.SOURCE_OF_TRUTH, ("hs",))
SOURCE_PD = Policy(PolicyRule.SOURCE_OF_TRUTH, ("pd",))  # an instance holding no copy
PRIORITY_PD_HS_SF = Policy(PolicyRule.PRIORITY, ("pd", "hs", "sf"))
NEWEST = Policy(PolicyRule.NEWEST)


def report_with_hs_acme(policies: dict[str, Policy], **changes: Any) -> HealthReport:
    acme = dataclasses.replace(HS[0], **changes)
    return build_health(inputs(deals={"sf": SF, "hs": [acme, *HS[1:]]}, policies=policies))


def choice(report: HealthReport, field: str) -> tuple[str, int, int, int]:
    counted = report.consolidated.copies_counted
    (found,) = (f for f in counted.fields if f.field == field)
    return found.policy, found.disagreed, found.by_policy, found.by_order


def test_amount_counts_from_the_source_of_truth_copy_not_the_first_instance():
    report = report_with_hs_acme({"amount": SOURCE_HS}, value=usd("1500"))
    assert report.consolidated.open_amount == {"EUR": D("2000"), "GBP": D("100"), "USD": D("1500")}
    proposal = {s.key: s for s in report.funnels["default"].stages}["proposal"]
    assert proposal.amount == {"USD": D("1500")}
    assert choice(report, "amount") == ("source_of_truth: hs", 1, 1, 0)


def test_without_a_deciding_policy_the_first_instance_copy_counts_and_the_report_says_so():
    report = report_with_hs_acme({}, value=usd("1500"))
    assert report.consolidated.open_amount["USD"] == D("1000")
    assert choice(report, "amount") == ("conflict", 1, 0, 1)
    assert report.consolidated.copies_counted.order == ("sf", "hs")


def test_a_source_of_truth_that_holds_no_copy_leaves_the_first_instance_copy():
    report = report_with_hs_acme({"amount": SOURCE_PD}, value=usd("1500"))
    assert report.consolidated.open_amount["USD"] == D("1000")
    assert choice(report, "amount") == ("source_of_truth: pd", 1, 0, 1)


def test_close_date_counts_from_the_first_priority_instance_holding_a_copy():
    # hs:10 closes 06-15, before today: Acme is past due too and leaves the July forecast.
    report = report_with_hs_acme({"close_date": PRIORITY_PD_HS_SF}, close_date=date(2024, 6, 15))
    assert report.consolidated.past_due == 2
    assert [m.month for m in report.consolidated.forecast.months] == ["2024-08"]
    assert choice(report, "close_date") == ("priority: pd, hs, sf", 1, 1, 0)


def test_stage_counts_with_its_status_from_the_newest_copy():
    # hs:10 won on 06-25, after sf:1's last update (06-20): Acme is won, at sf's amount.
    won = {"stage": "won", "native_stage": "WON", "status": DealStatus.WON}
    report = report_with_hs_acme({"stage": NEWEST}, updated_at=at(6, 25), **won)
    c = report.consolidated
    assert (c.open, c.won, c.lost) == (2, 3, 2)
    assert c.won_amount == {"USD": D("9000")}
    assert c.open_amount == {"EUR": D("2000"), "GBP": D("100")}
    assert choice(report, "stage") == ("newest", 1, 1, 0)


def test_an_older_copy_does_not_win_under_newest():
    won = {"stage": "won", "native_stage": "WON", "status": DealStatus.WON}
    report = report_with_hs_acme({"stage": NEWEST}, updated_at=at(6, 1), **won)
    c = report.consolidated
    assert (c.open, c.won) == (3, 2)
    assert choice(report, "stage") == ("newest", 1, 1, 0)


def test_each_field_counts_from_the_copy_its_own_policy_picks():
    # stage from hs (newest: won), amount from sf (source of truth over hs's 1500)
    won = {"stage": "won", "native_stage": "WON", "status": DealStatus.WON}
    policies = {"stage": NEWEST, "amount": Policy(PolicyRule.SOURCE_OF_TRUTH, ("sf",))}
    report = report_with_hs_acme(policies, updated_at=at(6, 25), value=usd("1500"), **won)
    assert report.consolidated.won_amount == {"USD": D("9000")}
    assert report.consolidated.won == 3


def test_json_and_html_say_which_copy_counted():
    report = report_with_hs_acme({"amount": SOURCE_HS}, value=usd("1500"))
    counted = to_json(report)["consolidated"]["copies_counted"]
    assert counted["order"] == ["sf", "hs"]
    assert counted["fields"][1] == {
        "field": "amount",
        "policy": "source_of_truth: hs",
        "disagreed": 1,
        "by_policy": 1,
        "by_order": 0,
        "with_stage": 0,
        "by_change": 0,
        "by_agreed_value": 0,
    }
    assert "the field's policy picks the copy" in counted["rule"]
    html = render_report(report, "html")
    assert "amount: 1 by policy (source_of_truth: hs), 0 by config order (sf, hs)" in html
    table = render_report(report, "table")
    assert "amount: 1 by policy (source_of_truth: hs), 0 by config order (sf, hs)" in table


def test_a_copy_won_in_an_unmapped_native_stage_takes_part_as_won_as_in_reconcile():
    # Pipedrive keeps a won deal in its pipeline stage; that stage unmapped, reconcile still
    # compares the copy as won (`comparable`), so the newest copy (hs, won) counts.
    won = {"stage": None, "native_stage": "CUSTOM", "status": DealStatus.WON}
    report = report_with_hs_acme({"stage": NEWEST}, updated_at=at(6, 25), **won)
    c = report.consolidated
    assert (c.open, c.won, c.lost) == (2, 3, 2)
    assert c.won_amount == {"USD": D("9000")}
    assert choice(report, "stage") == ("newest", 1, 1, 0)


def test_a_first_instance_copy_in_an_unmapped_stage_gives_way_to_the_copy_whose_stage_is_known():
    # sf:1's native stage is unmapped, hs:10 is in proposal: the stage takes no part where
    # unknown (as in reconcile), so Acme counts in proposal, not as an unmapped stage.
    unmapped = dataclasses.replace(SF[0], stage=None, native_stage="CUSTOM", stage_history=())
    report = build_health(inputs(deals={"sf": [unmapped, *SF[1:]], "hs": HS}))
    figures = report.funnels["default"]
    proposal = {s.key: s for s in figures.stages}["proposal"]
    assert (proposal.count, proposal.amount) == (1, {"USD": D("1000")})
    assert figures.unmapped_stage == 0
    assert report.systems["sf"].funnels["default"].unmapped_stage == 1
    assert choice(report, "stage") == ("conflict", 0, 0, 0)
