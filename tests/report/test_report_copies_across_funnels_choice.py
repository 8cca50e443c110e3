"""Which copy counts for a matched deal whose copies follow the default funnel and named ones
(sync/consolidate.py): the default copy says nothing of the product line, even beside copies
in two named funnels, and no policy is said to have placed a deal none decided; a default copy
won since the copies agreed counts the deal won (reconcile spreads that status)."""

from __future__ import annotations

import dataclasses

from fixtures import at, deal, inputs, usd

from config import Policy, PolicyRule
from mapping.funnel import DEFAULT_FUNNEL, Funnel, Phase, _stage
from mapping.model import Deal, DealStatus, Ref
from sync.diff import base_values
from sync.health import build_health
from sync.health_model import HealthReport

RENEWAL = Funnel(
    "renewal",
    (
        _stage("renewal_due", 1, Phase.DECISION, "0.6"),
        _stage("renewed", 2, Phase.ACTION, "1", closed=True, won=True),
        _stage("churned", 3, Phase.ACTION, "0", closed=True),
    ),
)
UPSELL = Funnel(
    "upsell",
    (
        _stage("pitch", 1, Phase.DECISION, "0.4"),
        _stage("sold", 2, Phase.ACTION, "1", closed=True, won=True),
        _stage("dropped", 3, Phase.ACTION, "0", closed=True),
    ),
)
FUNNELS = {"default": DEFAULT_FUNNEL, "renewal": RENEWAL, "upsell": UPSELL}


def _copy(system: str, stage: str, funnel: str, updated: int) -> Deal:
    made = deal(system, "1", "Monarch", stage, value=usd("1000"), updated_at=at(6, updated))
    return dataclasses.replace(made, funnel=funnel, pipeline=funnel)


def _report(copies: list[Deal], **overrides: object) -> HealthReport:
    return build_health(
        inputs(
            deals={c.ref.system: [c] for c in copies},
            funnels=FUNNELS,
            entities=[{c.ref.system: c.ref for c in copies}],
            consolidation_order=[c.ref.system for c in copies],
            plan=None,
            **overrides,
        )
    )


def _counted(report: HealthReport) -> dict[str, int]:
    return {name: f.deals for name, f in report.funnels.items() if f.deals}


def test_a_default_copy_first_in_config_order_never_places_a_deal_beside_two_named_funnels():
    # Salesforce (first in config order, updated last) in the default funnel; HubSpot renewal,
    # Pipedrive upsell (updated after HubSpot); the stage policy `conflict` decides nothing,
    # `newest` takes Pipedrive's, never Salesforce's.
    copies = [
        _copy("sf", "negotiation", "default", 20),
        _copy("hs", "renewal_due", "renewal", 10),
        _copy("pd", "pitch", "upsell", 15),
    ]
    for policies in ({}, {"stage": Policy(PolicyRule.NEWEST)}):
        report = _report(copies, policies=policies)
        across = report.consolidated.copies_counted.across_funnels
        placed = "by_stage_policy" if policies else "by config order"
        assert _counted(report) == ({"upsell": 1} if policies else {"renewal": 1}), placed
        assert across.counted_in == ({"upsell": 1} if policies else {"renewal": 1})
        assert across.by_stage_policy == (1 if policies else 0)


def test_a_deal_won_since_in_its_default_copy_alone_counts_won():
    base = base_values(_copy("sf", "negotiation", "default", 1))  # agreed: open
    won = dataclasses.replace(
        _copy("sf", "won", "default", 20), status=DealStatus.WON, native_stage="WON"
    )
    copies = [won, _copy("hs", "renewal_due", "renewal", 10)]
    bases = {Ref("sf", "1"): base, Ref("hs", "1"): base}
    report = _report(copies, bases=bases)
    assert report.consolidated.won == 1
    assert _counted(report) == {"default": 1}
