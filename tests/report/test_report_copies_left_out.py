"""A copy whose value the base marks as no change of its own (left out: it could not hold the
value the others agreed on, or an apply that stopped part-way wrote it there) differs from the
others, and no copy changed since: reconcile takes that copy back to the agreed value, whatever
the policy (sync.diff's catch-up), so the report counts the agreed value, not the marked one.

fixtures.py's Acme (sf:1, hs:10; sf first in config order) agreed on USD 1000; sf:1 holds USD
1500, marked in the base as left out.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest
from fixtures import HS, SF, inputs, usd

from config import Policy, PolicyRule
from mapping.funnel import DEFAULT_FUNNEL
from mapping.model import Ref
from sync.consolidate import Chooser
from sync.diff import LEFT_OUT, PICKED, Pick, base_values, diff
from sync.health import build_health
from sync.unmapped_stage import UnmappedStage

BASE = {**base_values(SF[0]), LEFT_OUT: {"amount": {Ref("sf", "1"): usd("1500")}}}
MARKED = dataclasses.replace(SF[0], value=usd("1500"))
NEEDS_ANALYSIS = UnmappedStage("default", "NEEDS ANALYSIS")
POLICIES = {
    "conflict": {},
    "source_of_truth": {"amount": Policy(PolicyRule.SOURCE_OF_TRUTH, ("sf",))},
    "newest": {"amount": Policy(PolicyRule.NEWEST)},
}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_copy_holding_a_value_marked_left_out_counts_at_the_value_the_others_agreed_on(
    policy: str,
) -> None:
    policies = POLICIES[policy]
    reconciled = diff(
        {"acme": {"sf": MARKED.ref, "hs": HS[0].ref}},
        {MARKED.ref: MARKED, HS[0].ref: HS[0]},
        {"acme": BASE},
        policies,
        ["sf", "hs"],
        can_express=lambda ref, field, value: None,  # both CRMs can hold any amount now
        funnels={"default": DEFAULT_FUNNEL},
    )
    assert [(c.target, c.field, c.to_value) for c in reconciled.changes] == [
        (MARKED.ref, "amount", D("1000"))
    ]
    deals = {"sf": [MARKED, *SF[1:]], "hs": HS}
    bases = {MARKED.ref: BASE, HS[0].ref: BASE}
    report = build_health(inputs(deals=deals, policies=policies, bases=bases))
    assert report.consolidated.open_amount["USD"] == D("1000")
    (amount,) = (f for f in report.consolidated.copies_counted.fields if f.field == "amount")
    assert (amount.disagreed, amount.by_policy, amount.by_order, amount.by_change) == (1, 0, 0, 1)
    assert amount.by_agreed_value == 1  # no change since: the value the others agreed on


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_copy_holding_its_crms_own_pick_counts_at_the_value_the_others_agreed_on(
    policy: str,
) -> None:
    """sf:1 is a copy crmsync created from a deal without an amount, and its CRM picked USD 1500
    (marked in the base as `picked`): reconcile spreads nothing, and the report counts the value
    the others agreed on, not the pick."""
    policies = POLICIES[policy]
    picked = {**base_values(SF[0]), PICKED: {"amount": {Ref("sf", "1"): Pick.NOT_SEEN}}}
    reconciled = diff(
        {"acme": {"sf": MARKED.ref, "hs": HS[0].ref}},
        {MARKED.ref: MARKED, HS[0].ref: HS[0]},
        {"acme": picked},
        policies,
        ["sf", "hs"],
        can_express=lambda ref, field, value: None,
        funnels={"default": DEFAULT_FUNNEL},
    )
    assert reconciled.changes == ()
    assert reconciled.agreed == {"acme": {PICKED: {"amount": {MARKED.ref: usd("1500")}}}}
    deals = {"sf": [MARKED, *SF[1:]], "hs": HS}
    bases = {MARKED.ref: picked, HS[0].ref: picked}
    report = build_health(inputs(deals=deals, policies=policies, bases=bases))
    assert report.consolidated.open_amount["USD"] == D("1000")


def test_a_copy_whose_stage_was_mapped_since_counts_at_the_stage_the_others_agreed_on() -> None:
    """sf:1 sat in a native stage its map did not cover while hs:10 moved on to proposal (the
    base marks that native stage); mapped since, it reads as qualified without having moved, and
    is the newest copy. Reconcile takes it to proposal, so proposal counts, under `newest` too."""
    remapped = dataclasses.replace(SF[0], stage="qualified", native_stage="NEEDS ANALYSIS")
    marked = {**base_values(SF[0]), LEFT_OUT: {"stage": {remapped.ref: NEEDS_ANALYSIS}}}
    chooser = Chooser(
        {"stage": Policy(PolicyRule.NEWEST)}, {"default": DEFAULT_FUNNEL}, ("sf", "hs")
    )
    assert chooser.stand_in([remapped, HS[0]], marked).stage == "proposal"
    moved = dataclasses.replace(remapped, native_stage="QUALIFICATION")  # a move made there
    assert chooser.stand_in([moved, HS[0]], marked).stage == "qualified"
