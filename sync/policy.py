"""Field policies: who wins when systems disagree and the three-way diff cannot tell.

A policy only speaks when several systems changed a field to different values, or when there
is no base yet (first sync). SOURCE_OF_TRUTH is stronger: its instance's value always wins
when that instance holds the entity, so edits elsewhere are reverted rather than spread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from mapping.model import Deal, format_utc

__all__ = ["DIFF_FIELDS", "Decision", "Policy", "PolicyKind", "decide", "policy_for"]

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


class PolicyKind(Enum):
    CONFLICT = "conflict"
    NEWEST = "newest"
    SOURCE_OF_TRUTH = "source_of_truth"
    PRIORITY = "priority"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class Policy:
    kind: PolicyKind
    instances: tuple[str, ...] = ()  # SOURCE_OF_TRUTH: one; PRIORITY: first wins

    def __post_init__(self) -> None:
        wanted = {PolicyKind.SOURCE_OF_TRUTH: "exactly one", PolicyKind.PRIORITY: "at least one"}
        count = len(self.instances)
        ok = {
            PolicyKind.SOURCE_OF_TRUTH: count == 1,
            PolicyKind.PRIORITY: count >= 1 and len(set(self.instances)) == count,
        }.get(self.kind, count == 0)
        if not ok:
            need = wanted.get(self.kind, "no")
            raise ValueError(f"policy {self.kind.value} takes {need} distinct instance name(s)")

    @classmethod
    def conflict(cls) -> Policy:
        return cls(PolicyKind.CONFLICT)

    @classmethod
    def newest(cls) -> Policy:
        return cls(PolicyKind.NEWEST)

    @classmethod
    def never(cls) -> Policy:
        return cls(PolicyKind.NEVER)

    @classmethod
    def source_of_truth(cls, instance: str) -> Policy:
        return cls(PolicyKind.SOURCE_OF_TRUTH, (instance,))

    @classmethod
    def priority(cls, *instances: str) -> Policy:
        return cls(PolicyKind.PRIORITY, tuple(instances))

    def __str__(self) -> str:
        if self.instances:
            return f"{self.kind.value}: {', '.join(self.instances)}"
        return self.kind.value


_CONFLICT = Policy.conflict()


def policy_for(policies: Mapping[str, Policy], field: str) -> Policy:
    return policies.get(field, _CONFLICT)


@dataclass(frozen=True, slots=True)
class Decision:
    """The value a field should have everywhere, or `conflict=True` with the reason why not."""

    value: Any
    reason: str
    conflict: bool = False


def decide(policy: Policy, candidates: Sequence[tuple[Deal, Any]]) -> Decision:
    """Pick among (deal, value) pairs that disagree; never called for NEVER."""
    kind = policy.kind
    if kind is PolicyKind.SOURCE_OF_TRUTH or kind is PolicyKind.PRIORITY:
        held = {deal.system: value for deal, value in candidates}
        for instance in policy.instances:
            if instance in held:
                label = "source of truth" if kind is PolicyKind.SOURCE_OF_TRUTH else "priority"
                return Decision(held[instance], f"{label}: {instance}")
        return Decision(None, f"{policy} holds no value for this deal", conflict=True)
    if kind is PolicyKind.NEWEST:
        newest = max(deal.updated_at for deal, _ in candidates)
        latest = [(deal, value) for deal, value in candidates if deal.updated_at == newest]
        if len({value for _, value in latest}) == 1:
            systems = ", ".join(sorted({deal.system for deal, _ in latest}))
            return Decision(latest[0][1], f"newest: updated in {systems} at {format_utc(newest)}")
        return Decision(None, "newest: several systems updated at the same time", conflict=True)
    return Decision(None, "systems disagree and the field's policy is conflict", conflict=True)
