"""Field policies: who wins when systems disagree and the three-way diff cannot tell.

A policy only speaks when several systems changed a field to different values, or when there
is no base yet (first sync). `source_of_truth` is stronger: its instance's value always wins
when that instance holds the entity, so edits elsewhere are reverted rather than spread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config import Policy, PolicyRule
from mapping.model import Deal, format_utc

# The one policy type is config's (built by `Config.policy_for(field)`); re-exported here for
# the engine's callers.
__all__ = ["DIFF_FIELDS", "Decision", "Policy", "PolicyRule", "decide", "describe", "policy_for"]

# The fields a diff compares. `amount` is Money (amount + currency compared together); a plan
# splits it into separate `amount` and `currency` changes.
DIFF_FIELDS: tuple[str, ...] = (
    "name",
    "stage",
    "status",
    "amount",
    "close_date",
    "owner_email",
    "probability",
)


_CONFLICT = Policy(PolicyRule.CONFLICT)


def policy_for(policies: Mapping[str, Policy], field: str) -> Policy:
    return policies.get(field, _CONFLICT)


def describe(policy: Policy) -> str:
    """'conflict', 'priority: pipedrive, salesforce': how a plan's reasons name a policy."""
    if policy.systems:
        return f"{policy.rule.value}: {', '.join(policy.systems)}"
    return policy.rule.value


@dataclass(frozen=True, slots=True)
class Decision:
    """The value a field should have everywhere, or `conflict=True` with the reason why not."""

    value: Any
    reason: str
    conflict: bool = False


def decide(policy: Policy, candidates: Sequence[tuple[Deal, Any]]) -> Decision:
    """Pick among (deal, value) pairs that disagree; never called for NEVER."""
    rule = policy.rule
    if rule is PolicyRule.SOURCE_OF_TRUTH or rule is PolicyRule.PRIORITY:
        held = {deal.system: value for deal, value in candidates}
        for instance in policy.systems:
            if instance in held:
                label = "source of truth" if rule is PolicyRule.SOURCE_OF_TRUTH else "priority"
                return Decision(held[instance], f"{label}: {instance}")
        return Decision(None, f"{describe(policy)} holds no value for this deal", conflict=True)
    if rule is PolicyRule.NEWEST:
        newest = max(deal.updated_at for deal, _ in candidates)
        latest = [(deal, value) for deal, value in candidates if deal.updated_at == newest]
        if len({value for _, value in latest}) == 1:
            systems = ", ".join(sorted({deal.system for deal, _ in latest}))
            return Decision(latest[0][1], f"newest: updated in {systems} at {format_utc(newest)}")
        return Decision(None, "newest: several systems updated at the same time", conflict=True)
    return Decision(None, "systems disagree and the field's policy is conflict", conflict=True)
