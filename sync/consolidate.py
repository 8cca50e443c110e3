"""Which copy's values count for a deal matched across CRMs in the consolidated figures.

A matched deal counts once. Where its copies agree, the copy of the first instance in config
order stands for it. Where they disagree on a counted field (stage, amount, close date), the
field's reconcile policy picks the copy whose value counts, as `reconcile` decides between
them (`sync.policy.decide`): `source_of_truth` / `priority`, the first listed instance holding a
copy; `newest`, the most recently updated copy. As in reconcile, once the copies have agreed
(a base), a value only one CRM changed since (or several to the same value) counts before any
policy but a source of truth whose instance holds a copy, and the policy decides only between
the copies changed since (`priority`: between all): else a copy updated last for another
field, still holding the value the others moved away from, would count under `newest`.
Where no copy changed since and only copies the base marks as keeping a value of their own
differ, the agreed value counts whatever the policy: reconcile takes those copies back to it.
A deal won or lost in one CRM since (or in several, the same way) counts as closed, from a copy
closed so, whatever the stage policy: reconcile spreads that status and moves the stage with it
(`sync.diff`'s coupling), unless the `status` policy is `never` or a `source_of_truth` whose
instance holds a copy.
Where the stage policy cannot decide (`conflict`, `never`, copies updated at the same moment
that disagree, no listed instance holding a copy), the first instance's copy counts, as it
does when the copies agree: the first copy whose stage is known (an open copy in an unmapped
stage takes no part, as in reconcile).

The stage counts together with the rest of its copy (status, stage timing, probability,
creation date): a stage taken from one CRM and a status or history from another would describe
no deal at all. The amount and the close date are taken from the copies their own policies
pick; where those cannot decide, from the copy whose stage counts, not the first instance's:
an open deal's expected close date and a won deal's closing date or amount belong to that
status (a deal reopened in one CRM must not be past due by the date another CRM won it on).

A deal whose copies follow different funnels (a Salesforce without a Renewal record type holds
renewals in its one pipeline, on the default funnel, while HubSpot and Pipedrive file them in
Renewals pipelines of funnel `renewal`) counts in one funnel, the same whichever copy was edited
last: a copy in the default funnel (the funnel of every pipeline no `pipeline_funnels` entry
names) says nothing of the product line where another copy follows a named funnel, so the
stage (with its status and timing) is chosen among the copies in named funnels alone, by the
rules above (between several named funnels, the stage policy decides), and the deal counts
there. Unless its default copy was won or lost since the copies agreed: reconcile spreads
that status, so the deal counts closed, from that copy, in the default funnel, until it has.
The amount and the close date are still chosen among every copy. Such deals are counted
(`AcrossFunnels`), since only their CRMs can settle which product line they belong to.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mapping.funnel import DEFAULT_FUNNEL, Funnel
from mapping.model import Deal, DealStatus
from sync.diff import FunnelFacts, Pick, left_out, picked
from sync.health_model import AcrossFunnels, CopiesCounted, CopyChoice
from sync.policy import Policy, PolicyRule, decide, describe, policy_for
from sync.unmapped_stage import holds_mark

__all__ = ["ACROSS_FUNNELS_FIX", "COPY_RULE", "COUNTED_FIELDS", "Chooser"]

COUNTED_FIELDS = ("stage", "amount", "close_date")
COPY_RULE = (
    "a deal matched across instances counts once; where its copies disagree on stage, amount "
    "or close date, the field's policy picks the copy whose value counts, as reconcile would "
    "(source_of_truth / priority: the first listed instance holding a copy; newest: the most "
    "recently updated copy); a value changed in one CRM since the copies last agreed counts "
    "before the policy speaks (source_of_truth aside), and newest compares only the copies "
    "changed since then; a deal won or lost in one CRM since counts so, whatever the stage "
    "policy (its status spreads and the stage follows it); where only copies the base marks "
    "as keeping a value of their own differ, the value agreed on; where it cannot decide, the copy "
    "of the first instance in `order`, and for amount and close date the copy whose stage "
    "counts; a deal whose copies follow the default funnel and named funnels counts in a named "
    "funnel, its stage, status and timing chosen as above among the copies in named funnels (a "
    "copy in the default funnel says nothing of the product line), unless the default copy "
    "was won or lost since the copies agreed (it counts closed, from that copy)"
)
ACROSS_FUNNELS_FIX = (
    "file each deal under one product line in every CRM: give the pipelines of a product line "
    "the same funnel (systems.<name>.pipeline_funnels), or let reconcile move the copies to "
    "their CRM's pipeline of the deal's funnel (push.move_between_pipelines)"
)
_MISSING = object()


def _stage_key(funnels: Mapping[str, Funnel]) -> Callable[[Deal], Any]:
    """Stage and status as reconcile compares them (`sync.comparable.comparable`: a closed deal
    by its closed stage, even where its native stage is unmapped); None for an open deal in an
    unmapped stage, which takes no part, as in reconcile."""
    facts = {name: FunnelFacts.of(funnel) for name, funnel in funnels.items()}

    def key(deal: Deal) -> Any:
        fact = facts.get(deal.funnel)
        if deal.status is DealStatus.OPEN or fact is None:
            stage = deal.stage
        else:  # won or lost whatever its native stage, mapped or not, as `comparable` has it
            stage = fact.effective_stage(deal)
        return None if stage is None else (stage, deal.status)

    return key


def _agreed(name: str, base: Mapping[str, Any] | None) -> Any:
    """The field's value when the copies last agreed (the stage: with its status), as a copy's
    value compares with it; `_MISSING` without one."""
    if base is None:
        return _MISSING
    if name == "stage":
        if "stage" not in base or "status" not in base:
            return _MISSING
        return (base["stage"], base["status"])
    return base.get(name, _MISSING)


def _changed_since(
    name: str, pairs: Sequence[tuple[Deal, Any]], base: Mapping[str, Any] | None
) -> list[tuple[Deal, Any]] | None:
    """The (copy, value) pairs whose value changed since the copies last agreed, as reconcile
    sees them: a value the base marks as the copy's own no change (`left_out`), or as its CRM's
    pick for a copy crmsync created (`picked`), is none. None without a base value for the
    field (a first sync: every copy is a candidate)."""
    was = _agreed(name, base)
    if was is _MISSING:
        return None
    marks, picks = left_out(base, name), picked(base, name)
    changed = []
    for deal, value in pairs:
        own = value[0] if name == "stage" else value
        kept = deal.ref in marks and holds_mark(marks[deal.ref], deal, own)
        kept = kept or picks.get(deal.ref, _MISSING) in (own, Pick.NOT_SEEN)
        if value != was and not kept:
            changed.append((deal, value))
    return changed


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
    by_change: Counter[str] = dataclasses.field(default_factory=Counter)
    # deals whose copies follow different funnels: per funnel counted in, and how many of them
    # the stage policy placed (copies in several named funnels)
    counted_in: Counter[str] = dataclasses.field(default_factory=Counter)
    across_by_policy: int = 0
    by_agreed_value: Counter[str] = dataclasses.field(default_factory=Counter)  # of by_change
    stage_key: Callable[[Deal], Any] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.stage_key = _stage_key(self.funnels)

    def stand_in(self, copies: Sequence[Deal], base: Mapping[str, Any] | None = None) -> Deal:
        """`copies`: the entity's live copies, the first instance's first. The deal counted:
        the copy the stage policy picks (among those of named funnels where others follow the
        default: `_staging`), else the first such copy with a known stage (else the
        first), with the amount and close date from the copies their policies pick, else its
        own."""
        first = copies[0]
        if len(copies) == 1:
            return first
        # An unmapped stage takes no part: the first copy whose stage is known stands in (of
        # those the stage is chosen among).
        known = next((d for d in copies if self.stage_key(d) is not None), first)
        funnels = {d.funnel for d in copies}
        staging = self._staging(copies, base)
        lead = next((d for d in staging if self.stage_key(d) is not None), staging[0])
        by_policy = self.by_policy["stage"]
        staged = self._pick("stage", staging, self.stage_key, base) or lead
        if len(funnels) > 1:
            self.counted_in[staged.funnel] += 1
            if self.by_policy["stage"] > by_policy and len(funnels - {DEFAULT_FUNNEL.name}) > 1:
                self.across_by_policy += 1
        valued = self._pick("amount", copies, _value, base) or self._own(
            "amount", copies, staged, known
        )
        dated = self._pick("close_date", copies, _close_date, base) or self._own(
            "close_date", copies, staged, known
        )
        if valued.value == staged.value and dated.close_date == staged.close_date:
            return staged
        return dataclasses.replace(staged, value=valued.value, close_date=dated.close_date)

    def _staging(self, copies: Sequence[Deal], base: Mapping[str, Any] | None) -> Sequence[Deal]:
        """The copies the stage is chosen among: where some follow the default funnel and the
        others named funnels, those of the named funnels (the default says nothing of the
        product line; between several named ones the stage policy decides). Unless a copy in
        the default funnel was won or lost since the copies agreed: reconcile spreads that
        status, so the deal counts closed, from that copy, until it has."""
        named = [d for d in copies if d.funnel != DEFAULT_FUNNEL.name]
        if not named or len(named) == len(copies):
            return copies
        closed = self._closed_since(copies, base)
        return copies if closed is not None and closed.funnel == DEFAULT_FUNNEL.name else named

    def _own(self, name: str, copies: Sequence[Deal], staged: Deal, known: Deal) -> Deal:
        """The copy whose stage counts, for a field whose policy picked no copy. Counted apart
        (`with_stage`) where that is not the copy config order gives (`known`) and the field's
        copies disagree."""
        key = _value if name == "amount" else _close_date
        if staged is not known and len({key(d) for d in copies}) > 1:
            self.with_stage[name] += 1
        return staged

    def _pick(
        self,
        name: str,
        copies: Sequence[Deal],
        key: Callable[[Deal], Any],
        base: Mapping[str, Any] | None,
    ) -> Deal | None:
        """The copy whose value reconcile would spread (`sync.diff`), None where the copies
        agree or it cannot decide: the stage of a deal closed since (`_closed_since`); the
        agreed value where only copies marked left out differ (reconcile's catch-up);
        `source_of_truth` where its instance holds a copy; else the one value the copies changed
        since they last agreed (`base`) took; else the policy, between the copies changed since
        then (`priority`: all of them)."""
        pairs = [(deal, key(deal)) for deal in copies]
        if name == "stage":
            pairs = [(deal, value) for deal, value in pairs if value is not None]
        if len({value for _, value in pairs}) <= 1:
            return None
        self.disagreed[name] += 1
        if name == "stage" and (closed := self._closed_since(copies, base)) is not None:
            self.by_change[name] += 1
            return closed
        policy = policy_for(self.policies, name)
        if policy.rule is PolicyRule.NEVER:
            return None
        changed = _changed_since(name, pairs, base)
        if changed == []:  # only values the base marks as no change: reconcile's catch-up
            agreed = _agreed(name, base)
            held = next((deal for deal, value in pairs if value == agreed), None)
            if held is not None:
                self.by_change[name] += 1
                self.by_agreed_value[name] += 1
            return held
        if policy.rule is PolicyRule.SOURCE_OF_TRUTH and policy.systems[0] in {
            deal.system for deal, _ in pairs
        }:
            decision = decide(policy, pairs)
        elif changed is not None and len({value for _, value in changed}) == 1:
            self.by_change[name] += 1
            return changed[0][0]  # in config order, as `copies`
        elif policy.rule is PolicyRule.CONFLICT:
            return None
        else:
            among = pairs if changed is None or policy.rule is PolicyRule.PRIORITY else changed
            decision = decide(policy, among)
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

    def _closed_since(self, copies: Sequence[Deal], base: Mapping[str, Any] | None) -> Deal | None:
        """The first copy (config order) closed as the copies changed since the base all were,
        where that is won or lost: reconcile spreads a status changed in one CRM only (or in
        several, to the same status) before the status policy, unless it is `never` or a source
        of truth holding a copy, and a closed status takes the stage with it, whatever the stage
        policy (`sync.diff`'s coupling). None otherwise."""
        if base is None or "status" not in base or len({d.status for d in copies}) <= 1:
            return None
        policy = policy_for(self.policies, "status")
        if policy.rule is PolicyRule.NEVER or (
            policy.rule is PolicyRule.SOURCE_OF_TRUTH
            and policy.systems[0] in {deal.system for deal in copies}
        ):
            return None
        was, marks = base["status"], left_out(base, "status")
        changed = [d for d in copies if d.status != was and marks.get(d.ref, _MISSING) != d.status]
        if len({d.status for d in changed}) != 1 or changed[0].status is DealStatus.OPEN:
            return None
        return next((d for d in changed if self.stage_key(d) is not None), None)

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
                    by_order=self.disagreed[name]
                    - self.by_policy[name]
                    - self.with_stage[name]
                    - self.by_change[name],
                    with_stage=self.with_stage[name],
                    by_change=self.by_change[name],
                    by_agreed_value=self.by_agreed_value[name],
                )
                for name in COUNTED_FIELDS
            ),
            across_funnels=AcrossFunnels(
                deals=self.counted_in.total(),
                counted_in=dict(sorted(self.counted_in.items())),
                by_stage_policy=self.across_by_policy,
                fix=ACROSS_FUNNELS_FIX,
            ),
        )
