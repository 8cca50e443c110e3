"""Which copy's values count for a deal matched across CRMs in the consolidated figures.

A matched deal counts once. Where its copies agree, the copy of the first instance in config
order stands for it. Where they disagree on a counted field (stage, amount, close date), the
field's reconcile policy picks the copy whose value counts, as `reconcile` decides between
them (`sync.policy.decide`): `source_of_truth` / `priority`, the first listed instance holding a
copy; `newest`, the most recently updated copy. Where the stage policy cannot decide
(`conflict`, `never`, copies updated at the same moment that disagree, no listed instance
holding a copy), the first instance's copy counts, as it does when the copies agree: the first
copy whose stage is known (an open copy in an unmapped stage takes no part, as in reconcile).

The stage counts together with the rest of its copy (status, stage timing, probability,
creation date): a stage taken from one CRM and a status or history from another would describe
no deal at all. The amount and the close date are taken from the copies their own policies
pick; where those cannot decide, from the copy whose stage counts, not the first instance's:
an open deal's expected close date and a won deal's closing date or amount belong to that
status (a deal reopened in one CRM must not be past due by the date another CRM won it on).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mapping.funnel import Funnel
from mapping.model import Deal, DealStatus
from sync.diff import FunnelFacts
from sync.health_model import CopiesCounted, CopyChoice
from sync.policy import Policy, PolicyRule, decide, describe, policy_for

__all__ = ["COPY_RULE", "COUNTED_FIELDS", "Chooser"]

COUNTED_FIELDS = ("stage", "amount", "close_date")
COPY_RULE = (
    "a deal matched across instances counts once; where its copies disagree on stage, amount "
    "or close date, the field's policy picks the copy whose value counts, as reconcile would "
    "(source_of_truth / priority: the first listed instance holding a copy; newest: the most "
    "recently updated copy); where it cannot decide, the copy of the first instance in `order`, "
    "and for amount and close date the copy whose stage counts"
)
_UNDECIDED = frozenset({PolicyRule.CONFLICT, PolicyRule.NEVER})


def _stage_key(funnels: Mapping[str, Funnel]) -> Callable[[Deal], Any]:
    """Stage and status as reconcile compares them (`sync.diff.comparable`: a closed deal by its
    closed stage, even where its native stage is unmapped); None for an open deal in an unmapped
    stage, which takes no part, as in reconcile."""
    facts = {name: FunnelFacts.of(funnel) for name, funnel in funnels.items()}

    def key(deal: Deal) -> Any:
        fact = facts.get(deal.funnel)
        if deal.status is DealStatus.OPEN or fact is None:
            stage = deal.stage
        else:  # won or lost whatever its native stage, mapped or not, as `comparable` has it
            stage = fact.effective_stage(deal)
        return None if stage is None else (stage, deal.status)

    return key


def _value(deal: Deal) -> Any:
    return deal.value


def _close_date(deal: Deal) -> Any:
    return deal.close_date


@dataclasses.dataclass(slots=True)
class Chooser:
    """Builds the deal that stands for each matched entity and counts how each field's copy
    was chosen."""

    policies: Mapping[str, Policy]
    funnels: Mapping[str, Funnel]
    order: tuple[str, ...]
    disagreed: Counter[str] = dataclasses.field(default_factory=Counter)
    by_policy: Counter[str] = dataclasses.field(default_factory=Counter)
    with_stage: Counter[str] = dataclasses.field(default_factory=Counter)
    stage_key: Callable[[Deal], Any] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.stage_key = _stage_key(self.funnels)

    def stand_in(self, copies: Sequence[Deal]) -> Deal:
        """`copies`: the entity's live copies, the first instance's first. The deal counted:
        the copy the stage policy picks, else the first copy with a known stage (else the
        first), with the amount and close date from the copies their policies pick, else its
        own."""
        first = copies[0]
        if len(copies) == 1:
            return first
        # An unmapped stage takes no part: the first copy whose stage is known stands in.
        known = next((d for d in copies if self.stage_key(d) is not None), first)
        staged = self._pick("stage", copies, self.stage_key) or known
        valued = self._pick("amount", copies, _value) or self._own("amount", copies, staged, known)
        dated = self._pick("close_date", copies, _close_date) or self._own(
            "close_date", copies, staged, known
        )
        if valued.value == staged.value and dated.close_date == staged.close_date:
            return staged
        return dataclasses.replace(staged, value=valued.value, close_date=dated.close_date)

    def _own(self, name: str, copies: Sequence[Deal], staged: Deal, known: Deal) -> Deal:
        """The copy whose stage counts, for a field whose policy picked no copy. Counted apart
        (`with_stage`) where that is not the copy config order gives (`known`) and the field's
        copies disagree."""
        key = _value if name == "amount" else _close_date
        if staged is not known and len({key(d) for d in copies}) > 1:
            self.with_stage[name] += 1
        return staged

    def _pick(self, name: str, copies: Sequence[Deal], key: Callable[[Deal], Any]) -> Deal | None:
        """The copy the field's policy picks, None where the copies agree or it cannot decide."""
        pairs = [(deal, key(deal)) for deal in copies]
        if name == "stage":
            pairs = [(deal, value) for deal, value in pairs if value is not None]
        if len({value for _, value in pairs}) <= 1:
            return None
        self.disagreed[name] += 1
        policy = policy_for(self.policies, name)
        if policy.rule in _UNDECIDED:
            return None
        decision = decide(policy, pairs)
        if decision.conflict:
            return None
        holding = [deal for deal, value in pairs if value == decision.value]
        if policy.rule is PolicyRule.NEWEST:
            holding.sort(key=lambda d: d.updated_at, reverse=True)  # stable: config order next
        else:
            rank = {instance: i for i, instance in enumerate(policy.systems)}
            holding.sort(key=lambda d: rank.get(d.system, len(rank)))
        self.by_policy[name] += 1
        return holding[0]

    def counted(self) -> CopiesCounted:
        return CopiesCounted(
            rule=COPY_RULE,
            order=self.order,
            fields=tuple(
                CopyChoice(
                    field=name,
                    policy=describe(policy_for(self.policies, name)),
                    disagreed=self.disagreed[name],
                    by_policy=self.by_policy[name],
                    by_order=self.disagreed[name] - self.by_policy[name] - self.with_stage[name],
                    with_stage=self.with_stage[name],
                )
                for name in COUNTED_FIELDS
            ),
        )
