"""A matched deal closed (won or lost) in one CRM since its copies last agreed, while another CRM
moved its stage: reconcile spreads the status changed in one CRM whatever the stage policy, and
the stage follows it (sync.diff couples them), so the report counts the closed copy.

fixtures.py's Acme (sf:1, hs:10) agreed in proposal (the base); then HubSpot's copy is lost on
06-21 and Salesforce's moved to negotiation on 06-25, the newer edit.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fixtures import HS, SF, at, inputs

from config import Policy, PolicyRule
from mapping.funnel import DEFAULT_FUNNEL
from mapping.model import DealStatus, Ref
from sync.diff import base_values, diff
from sync.health import build_health
from sync.health_model import HealthReport

NEWEST = Policy(PolicyRule.NEWEST)
SOURCE_SF = Policy(PolicyRule.SOURCE_OF_TRUTH, ("sf",))
BASE = base_values(SF[0])  # proposal, open: where both copies agreed
MOVED = dataclasses.replace(
    SF[0], stage="negotiation", native_stage="NEGOTIATION", updated_at=at(6, 25)
)
LOST = dataclasses.replace(
    HS[0], stage="lost", native_stage="LOST", status=DealStatus.LOST, updated_at=at(6, 21)
)


def _report(policies: dict[str, Policy]) -> HealthReport:
    deals = {"sf": [MOVED, *SF[1:]], "hs": [LOST, *HS[1:]]}
    bases = {Ref("sf", "1"): BASE, Ref("hs", "10"): BASE}
    return build_health(inputs(deals=deals, policies=policies, bases=bases))


def _reconciled(policies: dict[str, Policy]) -> dict[tuple[str, str], Any]:
    """(instance, field) -> the value reconcile writes to Acme's copies."""
    found = diff(
        {"acme": {"sf": MOVED.ref, "hs": LOST.ref}},
        {MOVED.ref: MOVED, LOST.ref: LOST},
        {"acme": BASE},
        policies,
        ["sf", "hs"],
        funnels={"default": DEFAULT_FUNNEL},
    )
    assert not found.conflicts
    return {(c.target.system, c.field): c.to_value for c in found.changes}


def _stage_choice(report: HealthReport) -> tuple[int, int, int]:
    (stage,) = (f for f in report.consolidated.copies_counted.fields if f.field == "stage")
    return stage.disagreed, stage.by_policy, stage.by_change


def test_a_deal_lost_in_one_crm_since_the_copies_agreed_counts_lost_though_another_moved_it_later():
    policies = {"stage": NEWEST}
    assert _reconciled(policies) == {("sf", "stage"): "lost", ("sf", "status"): DealStatus.LOST}
    report = _report(policies)
    c = report.consolidated
    assert (c.open, c.won, c.lost) == (2, 2, 3)  # Acme among the lost, not open in negotiation
    assert "USD" not in c.open_amount
    assert _stage_choice(report) == (1, 0, 1)


def test_a_status_source_of_truth_holding_a_copy_keeps_the_stage_policys_copy():
    # reconcile takes Salesforce's open status back to HubSpot; the newest stage, negotiation
    policies = {"stage": NEWEST, "status": SOURCE_SF}
    assert _reconciled(policies) == {
        ("hs", "stage"): "negotiation",
        ("hs", "status"): DealStatus.OPEN,
    }
    report = _report(policies)
    c = report.consolidated
    assert (c.open, c.won, c.lost) == (3, 2, 2)
    negotiation = {s.key: s for s in report.funnels["default"].stages}["negotiation"]
    assert negotiation.count == 2  # Acme and Beta
    assert _stage_choice(report) == (1, 1, 0)
