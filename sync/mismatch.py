"""Where an entity's copies disagree, whether or not the plan writes the difference: the
diff's `Mismatch` records. Pure.

The plan writes only some differences: copies in an instance `push.targets` leaves out, fields
under `never`, values a CRM cannot hold and stages waiting for an undecided status stay as they
are. The report's mismatches are meant to show every one (a read-only CRM is often the very one
being migrated away from), so the diff records each here, with why nothing is planned.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from mapping.model import Deal, Money, Ref
from sync.diff_result import Conflict, DealError, FieldChange, Mismatch, Unwritten
from sync.policy import Policy, PolicyRule, policy_for

__all__ = ["READ_ONLY", "mismatches", "split"]

READ_ONLY = "read-only: not in push.targets"
_NEVER = "policy never: the field is left as it is everywhere"
_UNDECIDED = "no value decided"
_LEFT = "no change planned; left as it is"
# Won and lost are both a status and a stage: neither moves while the other is undecided (and a
# probability goes with the status). See `couple` in sync/diff.py.
_COUPLED = {"stage": "status", "status": "stage", "probability": "stage"}
_NONE = object()  # no value: none decided, or none agreed on


def split(field_name: str, value: Any) -> list[tuple[str, Any]]:
    """A diff field's value as the plan's fields: the amount's Money as amount and currency."""
    if field_name != "amount":
        return [(field_name, value)]
    money: Money | None = value
    return [("amount", money.amount if money else None), ("currency", money and money.currency)]


def mismatches(
    entity: str,
    differing: Mapping[str, Sequence[tuple[Deal, Any]]],
    decided: Mapping[str, Any],
    base: Mapping[str, Any] | None,
    *,
    targets: Collection[str],
    policies: Mapping[str, Policy],
    changes: Sequence[FieldChange],
    conflicts: Sequence[Conflict],
    errors: Sequence[DealError],
) -> list[Mismatch]:
    """The mismatches of one entity: per diff field whose copies hold different values
    (`differing`: field -> each compared copy and its value), as the plan names it; `decided`,
    the value the entity takes per field; `base`, the values its copies last agreed on;
    `changes`, `conflicts`, `errors`: what the diff made of the entity.

    A copy is unwritten where it differs from the decided value; where none is decided, from
    the value the copies last agreed on (the copies still holding it are not what differs), or
    without one, every copy is. A read-only copy's `to` is the decided value, else the one all
    the other copies hold (none where they disagree too, its reason says so)."""
    written = {(c.target, c.field) for c in changes}
    in_conflict = {c.field for c in conflicts}
    refused = {(e.ref, e.field): e.reason for e in errors}
    found = []
    for name, pairs in differing.items():
        refs = tuple(deal.ref for deal, _ in pairs)
        if name in in_conflict:  # the conflict lists every copy's value
            found.append(Mismatch(entity, name, refs))
            continue
        # the value each copy is measured against: the decided one, else the last agreed one
        to = agreed = decided.get(name, _NONE)
        if agreed is _NONE and base:
            agreed = base.get(name, _NONE)
        for part, values, part_to, part_agreed in _parts(name, pairs, to, agreed):
            unwritten = []
            for deal, value in values:
                if value == part_agreed or (deal.ref, part) in written:
                    continue
                why = _why(deal, name, part, targets, refused)
                copy_to = part_to
                if copy_to is _NONE and why == READ_ONLY:
                    copy_to, why = _held_by_the_others(deal, values)
                why = why or _otherwise(name, policies, differing, decided)
                unwritten.append(Unwritten(deal.ref, value, _or_none(copy_to), why))
            found.append(Mismatch(entity, part, refs, tuple(unwritten)))
    return found


def _or_none(value: Any) -> Any:
    return None if value is _NONE else value


def _held_by_the_others(deal: Deal, values: Sequence[tuple[Deal, Any]]) -> tuple[Any, str]:
    """What a read-only copy would take where nothing is decided for it (a report's analysis
    decides no catch-up; a `never` field): the value every other copy holds, so the report
    still shows it, or _NONE where they disagree too."""
    others = {value for other, value in values if other is not deal}
    if len(others) == 1:
        return next(iter(others)), READ_ONLY
    return _NONE, f"{READ_ONLY}; the other copies disagree too"


_Part = tuple[str, Sequence[tuple[Deal, Any]], Any, Any]


def _parts(name: str, pairs: Sequence[tuple[Deal, Any]], to: Any, agreed: Any) -> list[_Part]:
    """The plan's fields of diff field `name` whose copies differ: (field, each copy and its
    value, the value decided, the value agreed), the last two _NONE where there is none."""
    if name != "amount":
        return [(name, pairs, to, agreed)]
    out: list[_Part] = []
    for index, part in enumerate(("amount", "currency")):
        values = [(deal, split(name, value)[index][1]) for deal, value in pairs]
        if len({value for _, value in values}) < 2:
            continue  # an amount whose currency agrees, or the other way round
        part_to, part_agreed = (
            _NONE if v is _NONE else split(name, v)[index][1] for v in (to, agreed)
        )
        out.append((part, values, part_to, part_agreed))
    return out


def _why(
    deal: Deal,
    name: str,
    part: str,
    targets: Collection[str],
    refused: Mapping[tuple[Ref, str], str],
) -> str | None:
    """Why no change of `part` is planned into `deal`, where the copy says: no push target, or
    the error the diff reported for it (a value its CRM cannot hold, an archived deal)."""
    if deal.system not in targets:
        return READ_ONLY
    return refused.get((deal.ref, part)) or refused.get((deal.ref, name))


def _otherwise(
    name: str,
    policies: Mapping[str, Policy],
    differing: Collection[str],
    decided: Collection[str],
) -> str:
    """Why a target copy of a field gets no change where the diff reported no error for it."""
    if name in decided:
        return _LEFT
    if policy_for(policies, name).rule is PolicyRule.NEVER:
        return _NEVER
    coupled = _COUPLED.get(name)
    if coupled in differing and coupled not in decided:
        return f"goes with the {coupled}, which is not decided; left as it is"
    return _UNDECIDED
