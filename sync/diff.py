"""Three-way diff: per entity and field, compare every member with the entity's base.

Pure and deterministic (in the spirit of data-diff's `diff_sets`): entities in, changes,
conflicts and reports out. A field changed in one system since the base propagates; changed in
several to different values, or without a base, the field's policy decides. Each deal is
reduced to one comparable tuple first, so the common case (all members equal) costs one tuple
comparison per entity instead of per-field Python work.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from mapping.context import stage_map_key
from mapping.funnel import Funnel
from mapping.model import Deal, DealStatus, Money, Ref
from sync.base_marks import LEFT_OUT, LEFT_OUT_WHY, PICKED, Pick, left_out, left_out_why, picked
from sync.comparable import DEFAULT_FACTS, FunnelFacts, base_values, comparable
from sync.diff_result import (
    CanExpress,
    Conflict,
    Create,
    DealError,
    Deletion,
    DiffResult,
    FieldChange,
    Kept,
    Mismatch,
    MoveTo,
    PipelineMove,
    Unwritten,
)
from sync.match import is_archived, is_deleted, paused_gc, ref_order
from sync.mismatch import mismatches
from sync.mismatch import split as _split
from sync.policy import DIFF_FIELDS, Decision, Policy, PolicyRule, decide, policy_for
from sync.unmapped_stage import UnmappedStage, holds_mark, unmapped_marks

__all__ = [
    "LEFT_OUT",
    "LEFT_OUT_WHY",
    "PICKED",
    "CanExpress",
    "Conflict",
    "Create",
    "DealError",
    "Deletion",
    "DiffResult",
    "FieldChange",
    "FunnelFacts",
    "Kept",
    "Mismatch",
    "MoveTo",
    "Pick",
    "PipelineMove",
    "Unwritten",
    "archived_reason",
    "base_values",
    "comparable",
    "create_source",
    "diff",
    "left_out",
    "picked",
]

_MISSING = object()
_STAGE, _STATUS, _AMOUNT = (DIFF_FIELDS.index(f) for f in ("stage", "status", "amount"))
_PROBABILITY = DIFF_FIELDS.index("probability")
_base_values = itemgetter(*DIFF_FIELDS)


def _base_row(base: Mapping[str, Any]) -> tuple[Any, ...]:
    try:
        return _base_values(base)
    except KeyError:
        return tuple(base.get(f, _MISSING) for f in DIFF_FIELDS)


def _unrecorded(agreed: tuple[Any, ...], base: Mapping[str, Any] | None) -> bool:
    """Is an entity whose members all hold `agreed` to be recorded as agreeing? Also when
    the base already holds it but still marks members (see `left_out`): agreement ends the
    marks, and one outliving it would take a later edit back to its value for no change."""
    if base is None or _base_row(base) != agreed:
        return True
    return bool(base.get(LEFT_OUT)) or bool(base.get(PICKED))


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def _one_new_value(name: str, was: Any, changed: Sequence[tuple[Deal, Any]]) -> Any:
    """The one value the changed members moved to, no policy needed; for the amount, also the
    Money taking each part from the copy that changed it (`_merged_money`). _MISSING when they
    moved to rival values."""
    values = {v for _, v in changed}
    if len(values) == 1:
        return changed[0][1]
    merged = _merged_money(was, changed) if name == "amount" else None
    return _MISSING if merged is None else merged


def _merged_money(was: Any, changed: Sequence[tuple[Deal, Any]]) -> Money | None:
    """The amount and the currency are fields of their own (README "Three-way diff"), compared
    together: copies that changed only one each (an amount here, the currency there) hold no
    rival values, and the new Money takes each part from the copies that changed it. None when
    a part was changed to different values, or the base or a copy has no amount."""
    if not isinstance(was, Money) or not all(isinstance(v, Money) for _, v in changed):
        return None
    amounts = {v.amount for _, v in changed if v.amount != was.amount}
    currencies = {v.currency for _, v in changed if v.currency != was.currency}
    if len(amounts) > 1 or len(currencies) > 1:
        return None
    return Money(next(iter(amounts), was.amount), next(iter(currencies), was.currency))


@dataclass(slots=True)
class _Differ:
    bases: Mapping[str, Mapping[str, Any]]
    policies: Mapping[str, Policy]
    targets: Collection[str]
    can_express: CanExpress | None
    facts: Mapping[str, FunnelFacts]
    # Per instance, the fields its CRM ties to the stage (`fields_with_stage` in sync/writes.py):
    # a status written as a stage (Salesforce, HubSpot), a probability set from it (Salesforce).
    with_stage: Mapping[str, Collection[str]] = field(default_factory=dict)
    changes: list[FieldChange] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    errors: list[DealError] = field(default_factory=list)
    agreed: dict[str, dict[str, Any]] = field(default_factory=dict)
    mismatched: list[Mismatch] = field(default_factory=list)
    kept_values: list[Kept] = field(default_factory=list)
    # The entity's members whose CRM cannot take the stage the others agreed on, and why.
    stage_refused: dict[Ref, str] = field(default_factory=dict)
    # The entity's members in a native stage their map does not cover (their stage changes are
    # skipped), and the config key that would map it.
    stage_unmapped: dict[Ref, str] = field(default_factory=dict)
    # Where a member whose pipeline's funnel lacks the stage the others agreed on moves to take
    # it (push.move_between_pipelines); None: it moves nowhere, and cannot take it.
    move: MoveTo | None = None
    # The entity's stages -> the funnel of a member holding each: the funnel a move goes to.
    stage_funnels: dict[Any, str] = field(default_factory=dict)
    # The entity's members a stage change moves to another pipeline.
    moving: set[Ref] = field(default_factory=set)

    def entity(self, entity: str, members: Sequence[Deal]) -> dict[str, Any]:
        """Diff one entity; the values decided where its members differ (diff field -> value)."""
        self.stage_refused.clear()
        self.stage_unmapped.clear()
        get_facts = self.facts.get
        facts = [get_facts(d.funnel, DEFAULT_FACTS) for d in members]
        rows = [comparable(d, f) for d, f in zip(members, facts, strict=True)]
        base = self.bases.get(entity)
        first = rows[0]
        if first[_STAGE] is not None and all(row == first for row in rows):
            if _unrecorded(first, base):
                self.agreed[entity] = dict(zip(DIFF_FIELDS, first, strict=True))
            return {}
        if self.move is not None:
            self.moving.clear()
            self.stage_funnels.clear()
            for deal, row in zip(members, rows, strict=True):
                if row[_STAGE] is not None:
                    self.stage_funnels.setdefault(row[_STAGE], deal.funnel)
        decided: dict[str, tuple[Decision, tuple[Ref, ...]]] = {}
        undecided: set[str] = set()  # conflicts and NEVER fields
        unread: list[Deal] = []  # members in a native stage their map does not cover
        read_stage: Any = _MISSING  # the one stage all the other members hold, if they do
        emitted, kept = len(self.errors), len(self.kept_values)
        changed, conflicted = len(self.changes), len(self.conflicts)
        differing: dict[str, list[tuple[Deal, Any]]] = {}  # the fields whose copies differ
        columns = zip(DIFF_FIELDS, zip(*rows, strict=True), strict=True)
        for index, (name, column) in enumerate(columns):
            held = column[0]
            if column.count(held) == len(column) and (held is not None or index != _STAGE):
                self.agree(entity, name, held, base)  # most fields of a differing deal agree
                continue
            pairs = [(d, row[index]) for d, row in zip(members, rows, strict=True)]
            if index == _STAGE:
                unread = [d for d, v in pairs if v is None]
                for deal in unread:
                    self.stage_unmapped[deal.ref] = stage_map_key(deal.system, deal.pipeline)
                pairs = [(d, v) for d, v in pairs if v is not None]
                if unread and len({v for _, v in pairs}) == 1:
                    read_stage = pairs[0][1]  # agreed around the unread: see `stage_around`
                    continue
            if len({v for _, v in pairs}) > 1:
                differing[name] = pairs
            result = self.field(entity, name, pairs, base)
            if result is not None:
                decided[name] = result
            elif len({v for _, v in pairs}) > 1:
                undecided.add(name)
        if self.couple(decided, undecided, _facts_of_decided_stage(decided, rows, facts)):
            statuses = sorted(((d.ref, row[_STATUS]) for d, row in zip(members, rows, strict=True)),
                              key=lambda p: ref_order(p[0]))  # fmt: skip
            reason = "the decided status (open) contradicts the decided stage; decide by hand"
            self.conflicts.append(Conflict(entity, "status", tuple(statuses), reason))
        if unread:
            stage = decided.get("stage")
            value = stage[0].value if stage else read_stage
            marks = self.stage_around(entity, unread, value, base)
            if stage is None and read_stage is not _MISSING:
                self.agree_around(entity, read_stage, marks, base)
        for deal, row in zip(members, rows, strict=True):
            if deal.system in self.targets:
                self.emit(entity, deal, row, decided, base)
            else:
                self.keep(entity, deal, row, decided, base)
        self.settle_left_out(
            entity, members, rows, decided, base, self.errors[emitted:], self.kept_values[kept:]
        )
        values = {name: decision.value for name, (decision, _) in decided.items()}
        self.mismatched += mismatches(
            entity, differing, values, base, targets=self.targets, policies=self.policies,
            changes=self.changes[changed:], conflicts=self.conflicts[conflicted:],
            errors=self.errors[emitted:],
        )  # fmt: skip
        return values

    def keep(
        self,
        entity: str,
        deal: Deal,
        row: tuple[Any, ...],
        decided: Mapping[str, tuple[Decision, tuple[Ref, ...]]],
        base: Mapping[str, Any] | None,
    ) -> None:
        """A member crmsync never writes keeps its values: each decided one it lacks is marked
        as kept, as a member that cannot hold it is. Else the next run would take that older
        value for an edit made there since and carry it back to the targets, night after
        night against the other CRM's value (a plan that never settles). Kept with the
        instances whose change it was, so the run that writes it there later can say why."""
        for name, (decision, sources) in decided.items():
            index = DIFF_FIELDS.index(name)
            value = row[index]
            if value != decision.value and not (index == _STAGE and value is None):
                self.kept_values.append(
                    Kept(entity, deal.ref, name, value, _changed_in(deal, name, sources, base))
                )

    def settle_left_out(
        self,
        entity: str,
        members: Sequence[Deal],
        rows: Sequence[tuple[Any, ...]],
        decided: Mapping[str, tuple[Decision, tuple[Ref, ...]]],
        base: Mapping[str, Any] | None,
        errors: Sequence[DealError],
        kept: Sequence[Kept],
    ) -> None:
        """A decided value every member holds but those left out (they cannot hold it, or are
        no push target) is the new base, marking what each left-out member kept: as after an
        apply that wrote it (sync/apply_bases.py). With nothing to write no apply does it, and
        later runs would decide the field as on a first sync, where a left-out member's value
        (Pipedrive's 0 for a cleared amount) can win and spread."""
        marked: dict[str, dict[Ref, Any]] = {}
        whys: dict[str, dict[Ref, tuple[str, ...]]] = {}
        for error in errors:
            if error.entity == entity and error.base_field is not None:
                marked.setdefault(error.base_field, {})[error.ref] = error.held
        for mark in kept:
            marked.setdefault(mark.field, {})[mark.ref] = mark.value
            if mark.changed_in is not None:
                whys.setdefault(mark.field, {})[mark.ref] = mark.changed_in
        for name, marks in marked.items():
            if name not in decided:  # an unmapped stage the others agree around (`agree_around`)
                continue
            value, index = decided[name][0].value, DIFF_FIELDS.index(name)
            holders = zip(members, rows, strict=True)
            if not all(row[index] == value or deal.ref in marks for deal, row in holders):
                continue
            if base and base.get(name, _MISSING) == value and left_out(base, name) == marks:
                continue  # recorded already
            agreed = self.agreed.setdefault(entity, {})
            agreed[name] = value
            agreed.setdefault(LEFT_OUT, {})[name] = marks
            if name in whys:
                agreed.setdefault(LEFT_OUT_WHY, {})[name] = whys[name]

    def stage_around(
        self, entity: str, unread: Sequence[Deal], value: Any, base: Mapping[str, Any] | None
    ) -> dict[Ref, Any]:
        """Report the members in a native stage their map does not cover, whose stage changes
        are skipped, and mark in the base what each holds while the others' stage `value` is
        recorded (_MISSING: none is): ref -> mark (see `unmapped_marks`)."""
        marks = {} if value is _MISSING else unmapped_marks(unread, value, base)
        for deal in unread:
            why = f"native stage {deal.native_stage!r} is not mapped; stage skipped"
            if deal.ref in marks:
                mark = marks[deal.ref]
                self.errors.append(DealError(deal.ref, "stage", why, entity, "stage", mark))
            else:
                self.errors.append(DealError(deal.ref, "stage", why))
        return marks

    def agree_around(
        self, entity: str, value: Any, marks: Mapping[Ref, Any], base: Mapping[str, Any] | None
    ) -> None:
        """Every member whose stage reads holds `value`: it is the base, marking what the unread
        members hold (`stage_around`), unless it is already. Recorded without those marks (as
        `agree` would), a remap of their native stage would read as their edit."""
        recorded = base is not None and base.get("stage", _MISSING) == value
        if recorded and left_out(base, "stage") == marks:
            return
        agreed = self.agreed.setdefault(entity, {})
        agreed["stage"] = value
        if marks:
            agreed.setdefault(LEFT_OUT, {})["stage"] = dict(marks)

    def field(
        self, entity: str, name: str, pairs: list[tuple[Deal, Any]], base: Mapping[str, Any] | None
    ) -> tuple[Decision, tuple[Ref, ...]] | None:
        values = {v for _, v in pairs}
        if len(values) <= 1:
            if values:
                self.agree(entity, name, pairs[0][1], base)
            return None
        policy = policy_for(self.policies, name)
        if policy.rule is PolicyRule.NEVER:
            return None
        was = _MISSING if base is None else base.get(name, _MISSING)
        if was is _MISSING:
            # No base yet, so no 'since': every member is a candidate, except one holding a
            # value an apply copied there before stopping part-way (see `left_out`).
            marks = left_out(base, name)
            changed = [(d, v) for d, v in pairs if marks.get(d.ref, _MISSING) != v] or pairs
        else:
            # A member still holding the value marked in the base (see `left_out`) has not
            # changed: else the next run would carry that value to the others as its edit.
            # Nor has a copy holding what its CRM picked when crmsync created it (`picked`).
            own = self.picks_held(entity, name, pairs, was, base)
            left = {
                d.ref: d
                for d, v in pairs
                if v != was and d.ref not in own and self.kept(d, name, v, was, base)
            }
            marked = left.keys() | own
            changed = [(d, v) for d, v in pairs if v != was and d.ref not in marked]
            if not changed:  # only marked members differ
                return self.catch_up(entity, name, was, left, base) if left else None
        sources = tuple(d.ref for d, _ in changed)
        holders = {d.system for d, _ in pairs}
        if policy.rule is PolicyRule.SOURCE_OF_TRUTH and policy.systems[0] in holders:
            decision = decide(policy, pairs)
        elif was is not _MISSING and (new := _one_new_value(name, was, changed)) is not _MISSING:
            systems = ", ".join(sorted({d.system for d, _ in changed}))
            decision = Decision(new, f"changed in {systems} since last sync")
        else:
            # PRIORITY looks at every member ("the first instance that has the entity").
            decision = decide(policy, pairs if policy.rule is PolicyRule.PRIORITY else changed)
            systems = ", ".join(sorted({d.system for d, _ in changed}))
            prefix = "first sync" if was is _MISSING else f"changed in {systems} since last sync"
            decision = Decision(decision.value, f"{prefix}: {decision.reason}", decision.conflict)
        if decision.conflict:
            values_by_ref = tuple(
                sorted(((d.ref, v) for d, v in pairs), key=lambda p: ref_order(p[0]))
            )
            self.conflicts.append(Conflict(entity, name, values_by_ref, decision.reason))
            return None
        return decision, sources

    def agree(self, entity: str, name: str, value: Any, base: Mapping[str, Any] | None) -> None:
        """Every member holds `value`: it is the base, recorded unless it is already."""
        recorded = base is not None and base.get(name, _MISSING) == value
        if not recorded or left_out(base, name) or picked(base, name):  # marks end with it
            self.agreed.setdefault(entity, {})[name] = value

    def picks_held(
        self,
        entity: str,
        name: str,
        pairs: Sequence[tuple[Deal, Any]],
        was: Any,
        base: Mapping[str, Any] | None,
    ) -> set[Ref]:
        """The members holding, instead of the base's value, what their CRM picked for a copy
        crmsync created (see `picked`). A pick not seen yet is recorded as the value held now:
        a later edit there is one. A mark ends once its member holds anything else."""
        marks = picked(base, name)
        if not marks:
            return set()
        held = {
            d.ref: v
            for d, v in pairs
            if v != was and (marks.get(d.ref, _MISSING) is Pick.NOT_SEEN or marks.get(d.ref) == v)
        }
        if held != marks:
            self.agreed.setdefault(entity, {}).setdefault(PICKED, {})[name] = held
        return set(held)

    def kept(
        self, deal: Deal, name: str, value: Any, was: Any, base: Mapping[str, Any] | None
    ) -> bool:
        """Does `deal` still hold the value the base marks as no change of its own?"""
        marks = left_out(base, name)
        if deal.ref in marks:
            return holds_mark(marks[deal.ref], deal, value)
        if name == "stage" and self.left_its_funnel(deal, was):
            return False
        return self.cannot_hold(deal, name, was)  # a base saved before left-out marks

    def left_its_funnel(self, deal: Deal, was: Any) -> bool:
        """Is the stage the others last agreed on, unmarked for `deal`, no stage of its funnel?
        Then it held that stage in another funnel's pipeline: a person moved it to another
        product line's pipeline, or its pipeline got a funnel of its own (`pipeline_funnels`)
        since. The stage it holds is a move made there, not a value it keeps for want of
        theirs: taken for one, no move of it would ever spread."""
        facts = self.facts.get(deal.funnel)
        return facts is not None and bool(facts.keys) and was not in facts.keys

    def catch_up(
        self,
        entity: str,
        name: str,
        was: Any,
        left: Mapping[Ref, Deal],
        base: Mapping[str, Any] | None,
    ) -> tuple[Decision, tuple[Ref, ...]] | None:
        """Only marked members differ from the base: those that can hold it now get it.
        (Without `can_express`, a read-only analysis, nothing is decided.)"""
        if self.can_express is None:
            return None
        able = tuple(
            r for r in sorted(left, key=ref_order) if not self.cannot_hold(left[r], name, was)
        )
        for ref in sorted(left.keys() - set(able), key=ref_order):
            why = f"cannot hold the {name} the other systems agreed on; left as it is"
            cause = self.why_not(left[ref], name, was)
            self.errors.append(DealError(ref, name, f"{cause}: {why}" if cause else why))
            if name == "stage":
                self.stage_refused[ref] = cause or why
        if not able:
            return None
        marks = left_out(base, name)
        if all(isinstance(marks.get(ref), UnmappedStage) for ref in able):
            # A stage mapped since, not a move made there: it takes the others' stage.
            why = "the stage the others agreed on while its native stage was unmapped"
            return Decision(was, f"{why} (it has not moved since)"), able
        return Decision(was, _back_to_agreed(able, left_out_why(base, name))), able

    def cannot_hold(self, deal: Deal, name: str, value: Any) -> bool:
        return self.why_not(deal, name, value) is not None

    def why_not(self, deal: Deal, name: str, value: Any) -> str | None:
        """Why `deal`'s CRM cannot hold `value` in `name` (its first reason), or None."""
        if self.can_express is None or value is None:
            return None
        reasons = (self.can_express(deal.ref, part, v) for part, v in _split(name, value))
        reason = next((r for r in reasons if r is not None), None)
        move = self.moved(deal, value) if reason is not None and name == "stage" else None
        if move is not None:
            return None if move.pipeline is not None else move.reason
        return reason

    def moved(self, deal: Deal, key: Any) -> PipelineMove | None:
        """The move that lets `deal` hold stage `key`, a stage of another funnel than its
        pipeline's (push.move_between_pipelines), into the funnel of a member holding it; None
        where no move is asked for (moves off, or its funnel has the stage)."""
        if self.move is None:
            return None
        facts = self.facts.get(deal.funnel)
        if facts is None or key in facts.keys:
            return None
        return self.move(deal.ref, key, self.stage_funnels.get(key))

    def couple(
        self,
        decided: dict[str, tuple[Decision, tuple[Ref, ...]]],
        undecided: set[str],
        fact: FunnelFacts,
    ) -> bool:
        """Won/lost are both a status and a stage: make the decided pair agree.

        A decided closed status pulls the stage to its won/lost stage; a decided stage alone
        pulls the status along, unless the status itself is in conflict (then neither moves);
        a decided open status alone cannot reopen a closed copy without a stage, so it does not
        move while the stage is in conflict (or `never`).
        A decided open status with a decided closed stage cannot both hold: neither moves,
        and True says so (the caller reports a conflict).
        """
        status = decided.get("status")
        stage = decided.get("stage")
        if status is not None and status[0].value in (DealStatus.WON, DealStatus.LOST):
            want = fact.won if status[0].value is DealStatus.WON else fact.first_lost
            have = stage[0].value if stage is not None else None
            if have is None or fact.closed.get(have) is not status[0].value:
                reason = f"follows status {status[0].value.value}"
                decided["stage"] = (Decision(want, reason), status[1])
        elif status is not None and stage is not None:
            if fact.closed.get(stage[0].value) is not None:  # open status, closed stage
                del decided["stage"], decided["status"]
                return True
        elif status is not None and "stage" in undecided:  # open status, no stage to open in
            del decided["status"]  # nor the open probability: a closed copy keeps its own, and
            decided.pop("probability", None)  # the write's stamp would make it the newest
        elif status is None and stage is not None:
            if "status" in undecided:
                del decided["stage"]
                return False
            closed = fact.closed.get(stage[0].value, DealStatus.OPEN)
            decided["status"] = (Decision(closed, f"follows stage {stage[0].value}"), stage[1])
        return False

    def emit(
        self,
        entity: str,
        deal: Deal,
        row: tuple[Any, ...],
        decided: Mapping[str, tuple[Decision, tuple[Ref, ...]]],
        base: Mapping[str, Any] | None,
    ) -> None:
        for index, name in enumerate(DIFF_FIELDS):
            got = decided.get(name)
            if got is None or row[index] == got[0].value:
                continue
            if index == _STAGE and row[_STAGE] is None:
                continue
            current = deal.stage if name == "stage" else row[index]
            base_fp = None if base is None else _fingerprint(base.get(name))
            for part, to_value in _split(name, got[0].value):
                from_value = dict(_split(name, current))[part]
                if from_value == to_value:
                    continue
                reason = archived_reason(deal)  # no write, nor move, goes to an archived deal
                archived = reason is not None
                if not archived and self.can_express is not None:
                    reason = self.can_express(deal.ref, part, to_value)
                why, pipeline = got[0].reason, None
                movable = index == _STAGE and reason is not None and not archived
                if movable and (move := self.moved(deal, to_value)):
                    pipeline, reason = move.pipeline, move.reason
                    if pipeline is not None:
                        why, reason = f"{why}; {move.reason}", None
                        self.moving.add(deal.ref)
                if index == _STAGE and reason is not None:
                    self.stage_refused[deal.ref] = reason
                elif index == _STATUS and reason is not None and self.rides_along(deal, name):
                    reason = None
                elif index in (_STATUS, _PROBABILITY) and reason is None:
                    reason = self.without_its_stage(deal, name)
                if reason is not None:
                    kept = row[index]
                    self.errors.append(DealError(deal.ref, part, reason, entity, name, kept))
                    continue
                self.changes.append(
                    FieldChange(
                        entity,
                        deal.ref,
                        part,
                        from_value,
                        to_value,
                        why,
                        deal.updated_at,
                        base_fp,
                        pipeline,
                    )
                )

    def rides_along(self, deal: Deal, name: str) -> bool:
        """Does `deal`'s change of `name` go with a stage change moving it to another pipeline,
        where its CRM writes it as the stage (a status in Salesforce and HubSpot)? Then the
        deal's own pipeline need not be able to hold it: the move's stage says it."""
        return deal.ref in self.moving and name in self.with_stage.get(deal.system, ())

    def without_its_stage(self, deal: Deal, name: str) -> str | None:
        """Why `deal` gets no change of `name`, a field its CRM ties to the stage (`with_stage`),
        as apply holds one behind a dead-lettered stage change (`_keep_with_stage`); None when
        it may go. Its CRM cannot take the stage the others agreed on: a probability written
        alone would be that of a stage the deal does not hold, and a status written as a stage
        would put it in another closed stage than the one decided (or, reopening, in none). Its
        own native stage is unmapped: the probability would go with a stage crmsync cannot
        read; a status may go, as it writes a closed stage the map covers."""
        if name not in self.with_stage.get(deal.system, ()):
            return None
        refused = self.stage_refused.get(deal.ref)
        if refused is not None:
            why = f"which {deal.system} cannot take ({refused})"
            return f"goes with the stage, {why}; left as it is"
        where = self.stage_unmapped.get(deal.ref)
        if where is None or name != "probability":
            return None
        return (
            f"goes with the stage, whose native stage {deal.native_stage!r} is not mapped (map it "
            f"in {where}); left as it is"
        )


def _changed_in(
    deal: Deal, name: str, sources: Sequence[Ref], base: Mapping[str, Any] | None
) -> tuple[str, ...] | None:
    """The instances whose change of `name` a member of no push target keeps its value
    against: () on a first sync; where it kept it already (the decision takes the others back
    to the agreed value), the why noted then."""
    if base is None or name not in base:
        return ()
    if deal.ref in left_out(base, name):
        return left_out_why(base, name).get(deal.ref)
    return tuple(sorted({ref.system for ref in sources}))


def _back_to_agreed(able: Sequence[Ref], whys: Mapping[Ref, tuple[str, ...]]) -> str:
    """Why marked members take the value the others agreed on: they were no push target when
    the others took it (all of them, in one change), else the old catch-all."""
    back = "back to the value the others agreed on"
    found = {whys.get(ref) for ref in able}
    if len(found) != 1 or (changed_in := found.pop()) is None:
        return f"{back}: marked as no change of its own (left out, or an apply stopped part-way)"
    systems = ", ".join(sorted({ref.system for ref in able}))
    verb = "was" if len(able) == 1 else "were"
    when = f"{', '.join(changed_in)} changed it" if changed_in else "the others first agreed"
    return f"{systems} {verb} not in push.targets when {when}: {back}"


def archived_reason(deal: Deal) -> str | None:
    """Why no write goes to `deal`: it is archived in Pipedrive, whose API edits no archived
    deal since 2025-07-15 (README "Connectors", Pipedrive "Reads"); None when it is not.

    The diff reports each change it would make there (marked in the base as the value the deal
    keeps, so a later run neither takes it for an edit made there nor forgets the difference)
    and apply leaves one planned before the archive as drifted."""
    if not is_archived(deal):
        return None
    return (
        f"deal {deal.name!r} is archived in {deal.system}, and its API does not edit archived "
        f"deals: left as it is; unarchive it in {deal.system} to let crmsync keep it in step"
    )


def _facts_of_decided_stage(
    decided: Mapping[str, tuple[Decision, tuple[Ref, ...]]],
    rows: Sequence[tuple[Any, ...]],
    facts: Sequence[FunnelFacts],
) -> FunnelFacts:
    """The funnel facts to couple status and stage with: a stage key means something in its own
    funnel only (copies in pipelines of different funnels), so a decided stage is read in the
    funnel of a copy holding it; else the first copy's."""
    stage = decided.get("stage")
    if stage is not None:
        for row, fact in zip(rows, facts, strict=True):
            if row[_STAGE] == stage[0].value:
                return fact
    return facts[0]


def _entities_by_field(found: Sequence[Mismatch]) -> dict[str, int]:
    """The entities whose copies differ, per diff field (an amount or a currency is the
    amount's)."""
    pairs = {(m.entity, "amount" if m.field == "currency" else m.field) for m in found}
    return dict(sorted(Counter(name for _, name in pairs).items()))


def _create_sources(members: Sequence[Deal], create_from: Collection[str] | None) -> list[Deal]:
    """The members an entity's copies may be made from: all, or the originals (no copy crmsync
    made carries its marker) of the instances `push.create_from` names that are not archived
    (out of Pipedrive's active views: a copy would revive it)."""
    if create_from is None:
        return list(members)
    return [d for d in members if d.system in create_from and not d.link_id and not is_archived(d)]


def create_source(members: Sequence[Deal]) -> Deal:
    """The member an entity's missing copies are made from: the first, by instance name, that
    is not itself a copy crmsync created (a copy carries crmsync's link marker).

    Copies an interrupted run got through must not change what the rerun copies: made from
    a copy, a record would carry that copy's links and twice-mapped values, and the entity
    would end up other than after an uninterrupted run, which copies the original.
    """
    return next((deal for deal in members if not deal.link_id), members[0])


def diff(
    entities: Mapping[str, Mapping[str, Ref]],
    deals_by_ref: Mapping[Ref, Deal],
    bases: Mapping[str, Mapping[str, Any]],
    policies: Mapping[str, Policy],
    targets: Collection[str],
    can_express: CanExpress | None = None,
    *,
    funnels: Mapping[str, Funnel] | None = None,
    propagate_deletes: bool = False,
    create_in: Collection[str] = (),
    hold: Collection[Ref] = (),
    changed: Collection[Ref] | None = None,
    with_stage: Mapping[str, Collection[str]] | None = None,
    move: MoveTo | None = None,
    create_from: Collection[str] | None = None,
) -> DiffResult:
    """Diff every entity against its base; see the module docstring.

    `with_stage`: per instance, the fields its CRM ties to the stage (a status written as a
    stage, a probability set from it); a member that cannot take the stage the others agreed on
    keeps them too, and one in an unmapped native stage its probability.

    `create_in`: instances where an entity missing there should be created (from
    :func:`create_source`); refs in `hold` (ambiguous, duplicates) never are. `create_from`
    (push.create_from; None: every instance): only an entity one of these instances holds an
    original of (no copy crmsync made) is copied, from that deal.
    `changed` (optional, for incremental runs): the refs whose deal is new or differs from the
    previous run (by pull fingerprint). Entities none of whose members are in it are skipped:
    the caller asserts the previous run left them settled (every member equal to the base,
    nothing pending), so the work is proportional to the changes. None diffs every entity.
    `move` (push.move_between_pipelines): where a member whose pipeline's funnel lacks the stage
    the others agreed on moves to take it; the stage change then names that pipeline
    (`FieldChange.pipeline`). None: such a member keeps its stage, reported in `errors`.
    """
    if changed is not None and not isinstance(changed, set | frozenset):
        changed = set(changed)
    with paused_gc():
        return _diff(
            entities, deals_by_ref, bases, policies, targets, can_express,
            funnels, propagate_deletes, create_in, hold, changed, with_stage or {}, move,
            create_from,
        )  # fmt: skip


def _diff(
    entities: Mapping[str, Mapping[str, Ref]],
    deals_by_ref: Mapping[Ref, Deal],
    bases: Mapping[str, Mapping[str, Any]],
    policies: Mapping[str, Policy],
    targets: Collection[str],
    can_express: CanExpress | None,
    funnels: Mapping[str, Funnel] | None,
    propagate_deletes: bool,
    create_in: Collection[str],
    hold: Collection[Ref],
    changed: set[Ref] | frozenset[Ref] | None,
    with_stage: Mapping[str, Collection[str]],
    move: MoveTo | None,
    create_from: Collection[str] | None,
) -> DiffResult:
    facts = {name: FunnelFacts.of(f) for name, f in (funnels or {}).items()}
    differ = _Differ(bases, policies, targets, can_express, facts, with_stage, move=move)
    deleted: list[Deletion] = []
    creates: list[Create] = []
    facts_get, bases_get, agreed = facts.get, bases.get, differ.agreed
    lookup = deals_by_ref.__getitem__
    for entity, refs in entities.items():
        if changed is not None and changed.isdisjoint(refs.values()):
            continue
        size = len(refs)
        if size < 2 and not create_in:
            continue
        if size == 2 and not create_in:
            # The common case, inlined: two live deals already equal cost one tuple compare.
            ref_a, ref_b = refs.values()
            a, b = lookup(ref_a), lookup(ref_b)
            if not a.extra and not b.extra:
                row = comparable(a, facts_get(a.funnel) if facts else None)
                if row[_STAGE] is not None and row == comparable(
                    b, facts_get(b.funnel) if facts else None
                ):
                    if _unrecorded(row, bases_get(entity)):
                        agreed[entity] = dict(zip(DIFF_FIELDS, row, strict=True))
                    continue
                differ.entity(entity, (a, b))
                continue
        members = [deals_by_ref[r] for r in refs.values()]
        gone = [d.ref for d in members if d.extra and is_deleted(d)]
        if gone:
            live = tuple(d.ref for d in members if not is_deleted(d))
            if live:
                deleted.append(Deletion(entity, tuple(gone), live, propagate_deletes))
            continue
        decided = differ.entity(entity, members) if len(members) > 1 else {}
        # Deals only an archive holds are no longer worked on: copies would revive them.
        if (
            create_in
            and not any(r in hold for r in refs.values())
            and not all(is_archived(d) for d in members)
            and (sources := _create_sources(members, create_from))
        ):
            source = create_source(sources)
            row = comparable(source, facts.get(source.funnel))
            values = dict(zip(DIFF_FIELDS, row, strict=True))
            overrides = {name: v for name, v in decided.items() if values[name] != v}
            for system in sorted(set(create_in) - refs.keys()):
                creates.append(Create(entity, system, source.ref, values | overrides, overrides))
    return DiffResult(
        changes=tuple(
            sorted(differ.changes, key=lambda c: (*ref_order(c.target), c.field, c.entity))
        ),
        conflicts=tuple(sorted(differ.conflicts, key=lambda c: (c.entity, c.field))),
        errors=tuple(sorted(differ.errors, key=lambda e: (*ref_order(e.ref), e.field, e.reason))),
        deleted=tuple(sorted(deleted, key=lambda d: d.entity)),
        creates=tuple(sorted(creates, key=lambda c: (c.system, c.entity))),
        agreed=differ.agreed,
        mismatches=_entities_by_field(differ.mismatched),
        kept=tuple(
            sorted(differ.kept_values, key=lambda k: (*ref_order(k.ref), k.field, k.entity))
        ),
        mismatched=tuple(sorted(differ.mismatched, key=lambda m: (m.entity, m.field))),
    )
